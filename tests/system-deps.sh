#!/bin/sh
# Debian packages the tests use beside the Python ones: stunnel4 (a real TLS terminator in
# front of the Kafka broker), openssl (throwaway certificates), prometheus (a real server
# scraping the daemon, and promtool for the alert rules) and bubblewrap (the container's
# read-only root and non-root user, without a container engine). Installed only if missing;
# needs root (CI runs as root).
set -e
missing=""
for pair in stunnel4:stunnel4 openssl:openssl prometheus:promtool bubblewrap:bwrap; do
    command -v "${pair#*:}" >/dev/null 2>&1 || missing="$missing ${pair%%:*}"
done
[ -z "$missing" ] && exit 0
apt-get update -qq
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
