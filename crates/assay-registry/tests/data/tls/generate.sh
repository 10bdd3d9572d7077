#!/usr/bin/env bash
# Regenerates the test CA and the server certificate for 127.0.0.1 / localhost used by the
# TLS tests (crates/assay-registry/tests/tls.rs, crates/assay-cli/tests/registry_e2e.rs).
# Test material only: the keys are public. Valid for 100 years.
set -euo pipefail
cd "$(dirname "$0")"
DAYS=36500
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca-key.pem
openssl req -x509 -new -key ca-key.pem -sha256 -days $DAYS -subj "/CN=Assay test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server-key.pem
openssl req -new -key server-key.pem -subj "/CN=localhost" -out server.csr
cat > server.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days $DAYS \
  -sha256 -extfile server.ext -out server.pem
# A second, unrelated CA: a client trusting only it must refuse the server.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-key.pem \
  -sha256 -days $DAYS -subj "/CN=Assay other test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out other-ca.pem
rm -f server.csr server.ext ca.srl ca-key.pem
