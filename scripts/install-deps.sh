#!/bin/sh
# Install what libmetaflow needs on Debian 12 (idempotent). Runs apt-get as
# root, or through sudo when not root.
set -eu
PKGS="meson ninja-build pkg-config gcc g++ clang llvm libclang-rt-14-dev
 libcurl4-openssl-dev libssl-dev liblmdb-dev libmsgpack-dev libzstd-dev
 libcmocka-dev libjansson-dev libexpat1-dev python3 python3-pytest python3-numpy
 python3-pandas python3-sklearn abigail-tools"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
