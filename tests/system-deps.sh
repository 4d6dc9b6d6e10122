#!/bin/sh
# Debian packages the tests use beside the Python ones: stunnel4 (a real TLS terminator in
# front of the Kafka broker) and openssl (throwaway certificates). Installed only if missing;
# needs root (CI runs as root).
set -e
if { command -v stunnel4 || command -v stunnel; } >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 openssl >/dev/null
