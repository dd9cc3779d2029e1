#!/usr/bin/env bash
# testca.sh -- throwaway TLS material for tests that talk amqps:// to a broker.
#
#   testca.sh DIR
#
# makes, in DIR (created if missing), with openssl and nothing else:
#   ca.pem, ca.key          a test certificate authority (self-signed)
#   server.pem, server.key  a server certificate signed by it, valid for
#                           IP:127.0.0.1 and DNS:localhost (the name the
#                           client checks), for the broker's TLS listener
#   other-ca.pem            a second CA, unrelated to the first: a client
#                           that trusts only it must refuse the server
# Keys are EC P-256 (fast to make); certificates last two days, so nothing
# made here can be of use later.  Every file is new on every run.
set -euo pipefail

dir=${1:?usage: testca.sh DIR}
mkdir -p "$dir"
cd "$dir"

ca() { # ca NAME SUBJECT: a self-signed CA certificate NAME.pem and its key
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "$2" -keyout "$1.key" -out "$1.pem" \
        -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

ca ca "/CN=imgfeed test CA"
ca other-ca "/CN=imgfeed unrelated CA"
rm -f other-ca.key

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout server.key -out server.csr 2>/dev/null
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:false" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
# The broker runs as this user and must read its key.
chmod 600 ca.key server.key
openssl verify -CAfile ca.pem server.pem >/dev/null
