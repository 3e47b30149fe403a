#!/usr/bin/env bash
# run.sh - mailsink's web UI in a real browser: installs playwright-core (exact version
# from package-lock.json) into the build tree, finds Debian's chromium, starts mailsink
# on free ports with a temporary database (twice: at / and under --webroot /mail/), runs
# browser.test.mjs, and always stops mailsink. Registered in ctest as mailsink.browser.
#
# Environment: MAILSINK_BIN (the program), TEST_OUTPUT_DIR (screenshots, logs,
# node_modules beside it), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fail() { echo "browser tests: $*" >&2; exit 1; }

[ -n "${MAILSINK_BIN:-}" ] && [ -x "$MAILSINK_BIN" ] || fail "MAILSINK_BIN must name the mailsink program"
out=${TEST_OUTPUT_DIR:-$(mktemp -d /tmp/mailsink-browser-out.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

command -v node >/dev/null && command -v npm >/dev/null ||
    fail "node and npm are needed (scripts/deps.sh installs them: apt-get install nodejs npm)"
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "no chromium at $chromium (scripts/deps.sh installs it: apt-get install chromium)"

# playwright-core goes into the build tree, never into the source tree
modules=$(dirname "$out")/node_modules-browser
mkdir -p "$modules"
want=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' "$here/package.json")
have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$modules/node_modules/playwright-core/package.json" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
    cp "$here/package.json" "$here/package-lock.json" "$modules/"
    echo "browser tests: installing playwright-core $want into $modules"
    (cd "$modules" && timeout 300 npm install --no-audit --no-fund --loglevel=error) ||
        fail "npm install of playwright-core failed (is the npm registry reachable?)"
fi

tmp=$(mktemp -d /tmp/mailsink-browser.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        # bounded: SIGKILL after 5 s
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_mailsink NAME [ARGS...]: sets smtp_addr and http_url from its log lines
start_mailsink() {
    local name=$1 log="$out/mailsink-$1.log"
    shift
    "$MAILSINK_BIN" --smtp 127.0.0.1:0 --http 127.0.0.1:0 --db "$tmp/$name.db" "$@" \
        >"$log" 2>&1 &
    pids+=($!)
    smtp_addr="" http_url=""
    for _ in $(seq 200); do # at most 20 s
        smtp_addr=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$log" | head -n1)
        http_url=$(sed -n 's|.*HTTP on \(http://127\.0\.0\.1:[0-9]*/[^ ]*\).*|\1|p' "$log" | head -n1)
        [ -n "$smtp_addr" ] && [ -n "$http_url" ] && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    fail "mailsink ($name) did not report its SMTP and HTTP addresses"
}

start_mailsink root
export UI_SMTP=$smtp_addr UI_HTTP=$http_url
start_mailsink prefixed --webroot /mail/ --ui-label 'Prefixed <i>box</i>'
export UI_SMTP_PREFIXED=$smtp_addr UI_HTTP_PREFIXED=$http_url
echo "browser tests: mailsink at $UI_HTTP (SMTP $UI_SMTP), prefixed at $UI_HTTP_PREFIXED"

export CHROMIUM=$chromium TEST_OUTPUT_DIR=$out
export PW_MODULES=$modules
status=0
timeout 480 node --test-reporter=spec "$here/browser.test.mjs" || status=$?
cleanup
# a sanitizer build reports what the UI's requests did to the server when it stops
if grep -E -l 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$out"/mailsink-*.log; then
    echo "browser tests: mailsink reported memory or undefined-behaviour errors (logs above)" >&2
    status=1
fi
echo "browser tests: screenshots and logs in $out"
exit $status
