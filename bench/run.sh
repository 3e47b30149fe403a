#!/usr/bin/env bash
# bench/run.sh - build a release mailsink and measure it beside Postfix's smtp-sink (see
# bench/run.py and bench/README.md). Arguments go to run.py: --quick for a short run,
# --runs N, --json FILE, --servers "smtp-sink,mailsink".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

bash "$root/scripts/deps.sh"
# Postfix's smtp-sink and smtp-source, without configuring or starting a mail system.
if ! command -v smtp-sink >/dev/null 2>&1 && [ ! -x /usr/sbin/smtp-sink ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postfix
    # a package may start its daemon; the benchmark wants nothing else on the machine
    $sudo systemctl stop postfix >/dev/null 2>&1 || $sudo postfix stop >/dev/null 2>&1 || true
fi

build="${BENCH_BUILD:-$root/build-release}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSMTPD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target mailsink smtp-load smtp-libsink

exec /usr/bin/python3 "$here/run.py" --bin "$build" "$@"
