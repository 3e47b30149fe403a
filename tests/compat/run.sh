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

# -- mailsink: one plain instance, one under --webroot /mail/ (behind a proxy) ------------
work=$out/run # the last run's databases and logs, for a look after a failure
rm -rf "$work"
mkdir -p "$work"
pids=()
names=()
stop_status=0
# SIGTERM, at most 10 s for a clean exit, then SIGKILL; stop_status 1 unless all exit 0.
stop_all() {
    local i p st how
    for i in "${!pids[@]}"; do
        p=${pids[$i]}
        [[ -n $p ]] || continue
        how="on SIGTERM"
        kill -TERM "$p" 2>/dev/null || how="by itself, before the SIGTERM"
        for _ in $(seq 100); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$p" 2>/dev/null; then
            echo "compat: ${names[$i]} did not stop within 10 s of SIGTERM; killing it" >&2
            kill -KILL "$p" 2>/dev/null || true
        fi
        st=0
        wait "$p" 2>/dev/null || st=$?
        if [[ $st != 0 ]]; then
            echo "compat: ${names[$i]} exited with status $st $how (expected 0 on SIGTERM)" >&2
            stop_status=1
        fi
        pids[$i]=
    done
}
trap stop_all EXIT

# start_mailsink NAME ARGS...: sets smtp_port and http_url (with the webroot path).
start_mailsink() {
    local name=$1 dir=$work/$1 log=$work/$1.log pid
    shift
    mkdir -p "$dir/home" "$dir/xdg"
    : >"$log" # exists before the background start gets to its redirection
    # Nothing of the caller's MAILSINK_* settings, and a home of its own.
    env $(env | sed -n 's/^\(MAILSINK_[A-Z0-9_]*\)=.*/-u \1/p') \
        HOME="$dir/home" XDG_DATA_HOME="$dir/xdg" \
        "$bin" --smtp 127.0.0.1:0 --http 127.0.0.1:0 --db "$dir/mail.db" \
        --hostname compat.test "$@" 2>"$log" </dev/null >/dev/null &
    pid=$!
    pids+=("$pid")
    names+=("$name")
    smtp_port=
    http_url=
    for _ in $(seq 300); do
        smtp_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" |
            head -n 1)
        http_url=$(sed -n 's|.*HTTP on \(http://127\.0\.0\.1:[0-9][0-9]*/[^ ]*\).*|\1|p' "$log" |
            head -n 1)
        [[ -n $smtp_port && -n $http_url ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $smtp_port || -z $http_url ]]; then
        echo "compat: $name did not report its SMTP and HTTP addresses; its log:" >&2
        cat "$log" >&2
        exit 1
    fi
    echo "compat: $name: SMTP 127.0.0.1:$smtp_port, HTTP $http_url"
}

start_mailsink mailsink
plain_smtp=$smtp_port
plain_url=${http_url%/}
start_mailsink mailsink-webroot --webroot /mail/
prefix_url=${http_url%/}

# -- the test ----------------------------------------------------------------------------
set +e
(cd "$moddir" && MAILSINK_SMTP_PORT=$plain_smtp MAILSINK_HTTP_URL=$plain_url \
    MAILSINK_WEBROOT_URL=$prefix_url \
    timeout 300 "$node" --test --test-reporter=spec compat.test.mjs) 2>&1 |
    tee "$out/compat.log"
rc=${PIPESTATUS[0]}
set -e

stop_all
[[ $stop_status == 0 ]] || rc=1
for log in "$work"/*.log; do
    if grep -q -E 'Sanitizer|runtime error:' "$log"; then
        echo "compat: a sanitizer error in $log:" >&2
        cat "$log" >&2
        rc=1
    fi
done
echo "compat: node test exit $rc; logs in $out"
exit "$rc"
