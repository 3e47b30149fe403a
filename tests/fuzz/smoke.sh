#!/usr/bin/env bash
# smoke.sh BUILD_DIR [SECONDS] - run every fuzz target for a short, bounded time.
#
# Each target (the list is in targets.sh) first replays its regression inputs
# (tests/fuzz/regressions/<target>/*), then fuzzes from a temporary copy of its seed
# corpus (the checked-in corpus is never modified) with its dictionary, for SECONDS
# (default FUZZ_SECONDS, else 30) each; FUZZ_TARGETS="a b" runs only those. Fails on any
# crash, leak, timeout or invariant failure; crash inputs are left in the printed
# artifacts directory. Prints exec counts and coverage. Bounded: every run has
# -max_total_time and an outer timeout.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [SECONDS]" >&2
    exit 2
fi
build=$1
secs=${2:-${FUZZ_SECONDS:-30}}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
. "$here/targets.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/smtpd-fuzz.XXXXXX")
status=0

for target in ${FUZZ_TARGETS:-$FUZZ_ALL_TARGETS}; do
    bin="$build/tests/fuzz/$target"
    if [ ! -x "$bin" ]; then
        echo "smoke: $bin not found (configure with -DSMTPD_FUZZ=ON -DCMAKE_C_COMPILER=clang)" >&2
        exit 2
    fi
    corpus="$work/corpus-$target"
    artifacts="$work/artifacts-$target/"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$here/corpus/$target" ]; then
        cp "$here/corpus/$target/"* "$corpus/" 2>/dev/null || true
    fi

    regdir="$here/regressions/$target"
    if [ -d "$regdir" ] && [ -n "$(ls -A "$regdir" 2>/dev/null)" ]; then
        if ! timeout 300 "$bin" -runs=1 "$regdir"/* > "$work/$target-regressions.log" 2>&1; then
            echo "smoke: $target FAILED on a regression input:" >&2
            tail -n 30 "$work/$target-regressions.log" >&2
            status=1
            continue
        fi
        echo "smoke: $target: $(ls "$regdir" | wc -l) regression inputs pass"
    fi

    log="$work/$target.log"
    if timeout $((secs + 120)) "$bin" "$corpus" -dict="$(fuzz_dict "$target" "$here")" \
            -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
            -max_len="$(fuzz_max_len "$target")" -print_final_stats=1 \
            -artifact_prefix="$artifacts" > "$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1 || true)
        echo "smoke: $target: ${execs:-?} execs in ${secs}s, ${cov:-cov: ?}, no crash"
    else
        echo "smoke: $target FAILED (artifacts in $artifacts):" >&2
        grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$log" | head -n 20 >&2 || true
        tail -n 40 "$log" >&2
        status=1
    fi
done

if [ $status -eq 0 ]; then
    rm -rf "$work"
else
    echo "smoke: logs kept in $work" >&2
fi
exit $status
