"""Creates the test container in Azurite and the test bucket in moto (idempotent).

Usage: objstore-setup.py AZURITE_ACCOUNT_URL S3_ENDPOINT NAME
Azurite's well-known development account key (public, documented by Microsoft) signs the
request; moto accepts any credentials. Standard library and boto3 (installed with moto).
"""
import base64, hashlib, hmac, sys, urllib.error, urllib.request
from email.utils import formatdate

import boto3
from botocore.exceptions import ClientError

az, s3, name = sys.argv[1:4]
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

date = formatdate(usegmt=True)
to_sign = "\n".join(["PUT", "", "", "", "", "", "", "", "", "", "", "",
                     f"x-ms-date:{date}", "x-ms-version:2021-08-06",
                     f"/{ACCOUNT}/{ACCOUNT}/{name}", "restype:container"])
sig = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest())
req = urllib.request.Request(f"{az}/{name}?restype=container", method="PUT", headers={"Content-Length": "0",
    "x-ms-date": date, "x-ms-version": "2021-08-06",
    "Authorization": f"SharedKey {ACCOUNT}:{sig.decode()}"})
try:
    urllib.request.urlopen(req, timeout=10)
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409: the container exists already
        sys.exit(f"azurite: cannot create container {name}: {e.code} {e.read()[:300]!r}")

client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
try:
    client.create_bucket(Bucket=name)
except ClientError as e:
    if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        raise
print(f"object stores ready: azurite container and s3 bucket {name!r}")
