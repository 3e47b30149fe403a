#!/usr/bin/env bash
# The mailpit-api npm client (the version pinned in package-lock.json) against mailsink:
# installs it under the build tree (never into the source tree), starts mailsink with
# SMTP and HTTP on 127.0.0.1 port 0, and runs compat.test.mjs (node:test) with the
# client's calls, checking the values. Every wait is bounded; mailsink is always stopped.
#
# Environment: MAILSINK_BIN (the program), TEST_OUTPUT_DIR (where logs go; the npm
# packages go beside it in ../node_modules-compat). ctest registers it as mailsink.compat.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${MAILSINK_BIN:?set MAILSINK_BIN to the mailsink program}
out=${TEST_OUTPUT_DIR:-$(mktemp -d /tmp/mailsink-compat.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

node=$(command -v node || true)
npm=$(command -v npm || true)
if [[ -z $node || -z $npm ]]; then
    echo "compat: node and npm are needed (scripts/deps.sh installs nodejs and npm)" >&2
    exit 1
fi
major=$("$node" -p 'process.versions.node.split(".")[0]')
if ((major < 18)); then
    echo "compat: node $("$node" --version) is too old (mailpit-api needs >= 18)" >&2
    exit 1
fi

# -- the client, installed once per build tree -------------------------------------------
moddir=$(dirname "$out")/node_modules-compat
mkdir -p "$moddir"
want=$("$node" -p "require('$here/package-lock.json').packages['node_modules/mailpit-api'].version")
have=$("$node" -p "try { require('$moddir/node_modules/mailpit-api/package.json').version }
                   catch (e) { '' }")
if [[ $have != "$want" ]] || ! cmp -s "$here/package-lock.json" "$moddir/package-lock.json"; then
    cp "$here/package.json" "$here/package-lock.json" "$moddir/"
    echo "compat: installing mailpit-api@$want into $moddir"
    (cd "$moddir" && timeout 300 "$npm" ci --no-audit --no-fund --loglevel=error) ||
        { echo "compat: npm ci failed" >&2; exit 1; }
fi
# The test imports "mailpit-api", which Node resolves from the file's own directory.
cp "$here/compat.test.mjs" "$moddir/compat.test.mjs"

# -- mailsink ---------------------------------------------------------------------------
work=$out/run  # the last run's database and home, for a look after a failure
rm -rf "$work"
mkdir -p "$work"
log=$work/mailsink.log
pid=
ms_status=
# SIGTERM, at most 10 s for a clean exit, then SIGKILL; ms_status is the exit status.
stop_mailsink() {
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "compat: mailsink did not stop within 10 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    ms_status=0
    wait "$pid" 2>/dev/null || ms_status=$?
    pid=
}
trap stop_mailsink EXIT

mkdir -p "$work/home" "$work/xdg"
: >"$log" # exists before the background start gets to its redirection
# Nothing of the caller's MAILSINK_* settings, and a home of its own.
env -u MAILSINK_BIN $(env | sed -n 's/^\(MAILSINK_[A-Z0-9_]*\)=.*/-u \1/p') \
    HOME="$work/home" XDG_DATA_HOME="$work/xdg" \
    "$bin" --smtp 127.0.0.1:0 --http 127.0.0.1:0 --db "$work/mail.db" \
    --hostname compat.test 2>"$log" </dev/null >/dev/null &
pid=$!

smtp_port=
http_url=
for _ in $(seq 300); do
    smtp_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
    http_url=$(sed -n 's|.*HTTP on \(http://127\.0\.0\.1:[0-9][0-9]*\)/.*|\1|p' "$log" | head -n 1)
    [[ -n $smtp_port && -n $http_url ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z $smtp_port || -z $http_url ]]; then
    echo "compat: mailsink did not report its SMTP and HTTP addresses; its log:" >&2
    cat "$log" >&2
    exit 1
fi
echo "compat: mailsink SMTP 127.0.0.1:$smtp_port, HTTP $http_url"

# -- the test ----------------------------------------------------------------------------
set +e
(cd "$moddir" && MAILSINK_SMTP_PORT=$smtp_port MAILSINK_HTTP_URL=$http_url \
    timeout 300 "$node" --test --test-reporter=spec compat.test.mjs) 2>&1 |
    tee "$out/compat.log"
rc=${PIPESTATUS[0]}
set -e

stop_mailsink
if [[ $ms_status != 0 ]]; then
    echo "compat: mailsink exited with status $ms_status on SIGTERM (expected 0)" >&2
    rc=1
fi
if grep -q -E 'Sanitizer|runtime error:' "$log"; then
    echo "compat: mailsink reported a sanitizer error:" >&2
    cat "$log" >&2
    rc=1
fi
cp "$log" "$out/mailsink.log"
echo "compat: node test exit $rc; logs in $out"
exit "$rc"
