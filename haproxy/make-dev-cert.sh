#!/bin/sh
# Make a self-signed TLS certificate for local development of the hookrelay edge.
#
#   haproxy/make-dev-cert.sh [--force] [DIR]      (DIR defaults to haproxy/certs/)
#
# Writes DIR/hookrelay.pem (certificate followed by its private key: the single file HAProxy's
# "crt" wants) and DIR/hookrelay.crt (the certificate alone, for curl --cacert or a trust store).
# CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1; valid 825 days (the longest lifetime
# Apple platforms accept for a TLS server certificate). Never use it in production.
#
# Idempotent: an existing hookrelay.pem is kept unless --force is given. To swap a certificate on
# a running edge without dropping connections, see docs/edge.md ("Rotating the certificate").
set -eu

force=0
dir=""
for arg in "$@"; do
  case "$arg" in
    -f|--force) force=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "make-dev-cert: unknown option $arg" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "make-dev-cert: only one directory may be given" >&2; exit 2; }
       dir="$arg" ;;
  esac
done
if [ -z "$dir" ]; then
  dir="$(cd "$(dirname "$0")" && pwd)/certs"
fi

command -v openssl >/dev/null 2>&1 || { echo "make-dev-cert: openssl is required" >&2; exit 1; }

pem="$dir/hookrelay.pem"
crt="$dir/hookrelay.crt"
if [ -s "$pem" ] && [ "$force" -eq 0 ]; then
  echo "make-dev-cert: $pem exists; keeping it (use --force to replace)"
  exit 0
fi

mkdir -p "$dir"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/hookrelay-cert.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT INT TERM

# P-256 ECDSA: small, fast and accepted by every client that speaks TLS 1.2+ with ECDHE.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
  -days 825 \
  -subj "/CN=localhost/O=hookrelay development" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

cat "$tmp/cert.pem" "$tmp/key.pem" > "$tmp/hookrelay.pem"
# Readable by the haproxy container's unprivileged user (the bind mount keeps the host mode);
# this is a throwaway development key, so 0644 is acceptable here and only here.
chmod 0644 "$tmp/hookrelay.pem" "$tmp/cert.pem"
# Rename into place so a running HAProxy never reads a half-written file.
mv -f "$tmp/cert.pem" "$crt"
mv -f "$tmp/hookrelay.pem" "$pem"

echo "make-dev-cert: wrote $pem (cert+key) and $crt"
openssl x509 -in "$crt" -noout -subject -enddate
