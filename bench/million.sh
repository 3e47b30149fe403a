#!/usr/bin/env bash
# bench/million.sh [COUNT] - store COUNT messages (default 1,000,000) of 1 KiB in a fresh
# mailsink over pipelined SMTP, sampling its RSS and stored count every 5 s, then time the
# list API (first page, a deep page) and an is:unread search at that size. Needs the
# Release tree bench/run.sh builds (build-release/); talks only to 127.0.0.1; bounded by
# smtp-load's --timeout and the sampler's count. Prints the RSS samples and the timings.
set -euo pipefail
count=${1:-1000000}
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BENCH_BUILD:-$root/build-release}"
work=$(mktemp -d "${TMPDIR:-/tmp}/mailsink-million.XXXXXX")
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

"$build/mailsink" --smtp 127.0.0.1:0 --http 127.0.0.1:0 --db "$work/mail.db" \
    > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    grep -q "HTTP on" "$work/log" 2>/dev/null && break
    sleep 0.1
done
smtp=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/log" | head -n 1)
http=$(sed -n 's/.*HTTP on \(http:[^ ]*\).*/\1/p' "$work/log" | head -n 1)
[ -n "$smtp" ] && [ -n "$http" ] || { cat "$work/log" >&2; exit 1; }

( for _ in $(seq 2000); do
      [ -d "/proc/$pid" ] || break
      echo "$(date +%T) rss_kib=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")" \
           "stored=$(curl -s "${http}api/v1/messages?limit=1" | sed -n 's/^{"total":\([0-9]*\).*/\1/p')"
      sleep 5
  done ) > "$work/rss.log" &
sampler=$!

"$build/smtp-load" --port "$smtp" --messages "$count" --size 1024 --pipelining \
    --sessions 20 --timeout 3600
kill "$sampler" 2>/dev/null || true
cat "$work/rss.log"
for what in "messages?limit=50" "messages?limit=50" "messages?limit=50" \
            "messages?start=$((count / 2))&limit=50" "search?query=is:unread&limit=50"; do
    curl -s -o /dev/null -w "GET /api/v1/$what: %{time_total} s\n" "${http}api/v1/$what"
done
