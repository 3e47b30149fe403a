#!/usr/bin/env bash
# Install the Debian packages this project needs, only those missing. Idempotent; run as
# root (or with sudo available) on Debian 12. Says what it installs.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git     # build
    libevent-dev libssl-dev                  # libsmtpd: event loop, (TLS later)
    libsqlite3-dev libgmime-3.0-dev          # mailsink: store, MIME summaries
    libjansson-dev sqlite3                   # mailsink: JSON output; sqlite3 for tests
    libcmocka-dev                            # unit tests
    clang libclang-rt-14-dev                 # libFuzzer targets and sanitizers
    python3-pytest swaks curl                # end-to-end and protocol-case tests
    libnet-ssleay-perl openssl               # swaks --tls, test certificates
    tzdata                                   # search before:/after: with ?tz= (zoneinfo)
    chromium                                 # browser tests (driven by playwright-core)
    faketime                                 # fault tests: clock jumps (libfaketime)
)
# Node.js and npm only run the compatibility and browser tests (npm packages installed by
# those tests into the build tree). A machine with a Node.js of its own keeps it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "deps.sh: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
