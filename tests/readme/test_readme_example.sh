#!/usr/bin/env bash
# The README's embedding example must compile against the library and work: extract
# the C block, build it, send it a message with curl, and check it printed the message.
set -euo pipefail
src_dir=$1 build_dir=$2 cc=${CC:-cc} SANITIZE_FLAGS=${SANITIZE_FLAGS:-}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

awk '/^```c$/{on=1; next} /^```$/{on=0} on' "$src_dir/README.md" > "$work/example.c"
test -s "$work/example.c"
$cc -std=c11 -Wall -Wextra -Werror -I"$src_dir/include" "$work/example.c" \
    "$build_dir/libsmtpd.a" $(pkg-config --libs libevent_core libevent_pthreads libevent_openssl openssl) -lpthread \
    $SANITIZE_FLAGS -o "$work/example"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/example" "$port" > "$work/out" &
pid=$!
printf 'Subject: readme\r\n\r\nhello from the README test\r\n' > "$work/msg"
for _ in $(seq 50); do
    curl -sS --max-time 5 "smtp://127.0.0.1:$port" --mail-from a@example.com \
        --mail-rcpt b@example.com --upload-file "$work/msg" 2>/dev/null && break
    sleep 0.1
done
sleep 0.2
grep -q 'hello from the README test' "$work/out"
grep -q '^Return-Path: <a@example.com>' "$work/out"
echo "README example: 1 passed, 0 failed"
