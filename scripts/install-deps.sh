#!/bin/sh
# Install what xluo needs to build and test on Debian 12. Idempotent: only
# packages that are missing are installed. Runs apt-get directly as root,
# through sudo otherwise. Usage: scripts/install-deps.sh [--bench]
set -eu

# zstd (the command): the end-to-end tests compress request bodies with it.
# monitoring-plugins-basic: real Nagios plugins the exec input test runs.
pkgs="build-essential cmake pkg-config python3 clang
libuv1-dev libcurl4-openssl-dev libmicrohttpd-dev libjansson-dev libyaml-dev
libsqlite3-dev libzstd-dev libcmocka-dev libpcre2-dev zstd monitoring-plugins-basic"
# Peers measured side by side by bench/ (not needed by `make test`).
bench_pkgs="collectd-core prometheus-node-exporter rsyslog procps"

[ "${1:-}" = "--bench" ] && pkgs="$pkgs $bench_pkgs"

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "install-deps: missing packages:$missing; run as root or install sudo" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -q
# shellcheck disable=SC2086
$as_root apt-get install -y -q --no-install-recommends $missing
