#!/usr/bin/env bash
# Regenerates the test keys, certificates and reference bundles in this folder.
# Needs openssl and the reference tool: MODEL_SIGNING=/path/to/venv/bin/model_signing.
# Keys here are test-only and sign nothing else.
set -euo pipefail
cd "$(dirname "$0")"
MS=${MODEL_SIGNING:-model_signing}
PY=$(dirname "$(command -v "$MS")")/python

openssl ecparam -name prime256v1 -genkey -out p256.sec1.pem 2>/dev/null        # with EC PARAMETERS block
openssl pkey -in p256.sec1.pem -pubout -out p256.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem
openssl pkey -in p384.pem -pubout -out p384.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521.pem
openssl pkey -in p521.pem -pubout -out p521.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.pem
openssl pkey -in other.pem -pubout -out other.pub.pem
# The hints Python's cryptography computes (sha256 of the PEM SubjectPublicKeyInfo).
for k in p256 p384 p521; do
  "$PY" -c "
import hashlib,sys
from cryptography.hazmat.primitives import serialization as s
k=s.load_pem_public_key(open('$k.pub.pem','rb').read())
print(hashlib.sha256(k.public_bytes(s.Encoding.PEM,s.PublicFormat.SubjectPublicKeyInfo)).hexdigest())" > $k.hint
done

# A CA chain: root (P-384) → intermediate (P-256, SHA-384) → signing certificate (P-256).
cat > ext.cnf <<'CNF'
[v3ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[v3leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
[v3noSign]
basicConstraints=critical,CA:FALSE
keyUsage=critical,keyEncipherment
CNF
cnf() { cat /etc/ssl/openssl.cnf ext.cnf; }  # -extensions needs the sections in -config
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out root.key
openssl req -x509 -new -key root.key -subj /CN=assay-test-root -days 36500 -out root.pem -extensions v3ca -config <(cnf)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out other-root.key
openssl req -x509 -new -key other-root.key -subj /CN=assay-test-root -days 36500 -out other-root.pem -extensions v3ca -config <(cnf)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out int.key
openssl req -new -key int.key -subj /CN=assay-test-intermediate -out int.csr
openssl x509 -req -sha384 -in int.csr -CA root.pem -CAkey root.key -set_serial 2 -days 36000 -extfile ext.cnf -extensions v3ca -out int.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key
openssl req -new -key leaf.key -subj /CN=assay-test-signer -out leaf.csr
openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -set_serial 3 -days 35000 -extfile ext.cnf -extensions v3leaf -out leaf.pem
openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -set_serial 4 -days 35000 -extfile ext.cnf -extensions v3noSign -out leaf-nosign.pem
rm -f int.csr leaf.csr root.key other-root.key int.key

rm -f ext.cnf

# Reference bundles over a small folder, the one tests/sign.rs `small_model` builds
# (git cannot hold its .git folder, so it is made in a temporary folder).
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
m=$tmp/model; mkdir -p $m/a $m/a-c $m/.git
printf 'weights' > $m/w.bin; printf 'x' > $m/a/x; printf 'z' > $m/a-c/z; printf '{}' > $m/a.txt
printf 'ignored' > $m/.git/HEAD; : > $m/empty
"$MS" sign key $m --private_key p256.sec1.pem --signature ref-key.sig >/dev/null
"$MS" sign key $m --private_key p521.pem --signature ref-key-p521.sig >/dev/null
"$MS" sign certificate $m --private_key leaf.key --signing_certificate leaf.pem \
  --certificate_chain int.pem --signature ref-cert.sig >/dev/null
