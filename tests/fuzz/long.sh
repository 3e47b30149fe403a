#!/usr/bin/env bash
# long.sh BUILD_DIR - the long fuzzing runs of `make fuzz`.
#
# Every target (targets.sh) in turn, at nice 15, for FUZZ_EXECS executions (default
# 10^7, the bar of issue 7) or FUZZ_MINUTES minutes (default 240), whichever comes first;
# FUZZ_EXECS=0 runs for the time alone. At 10^7 most targets take 15-60 minutes here;
# fuzz_mime and fuzz_http (a real HTTP server per input) need FUZZ_JOBS=2 or more and
# more time, or several runs on the kept corpus. FUZZ_TARGETS="fuzz_sasl fuzz_cli" runs
# only those. Each target
# keeps its corpus in BUILD_DIR/fuzz-long/<target>/ between runs (seeded from the
# checked-in corpus and its regressions) and uses its dictionary. Logs go to
# BUILD_DIR/fuzz-long/logs/<target>.log (FUZZ_LOGS overrides the directory).
#
# FUZZ_JOBS=N (default 1) runs N processes of each target at once on its one corpus
# (each takes up what the others add when libFuzzer reloads the corpus, every second),
# for a machine with N cores to spare; FUZZ_EXECS is then shared out between them, the
# executions reported are their sum, and the logs are <target>.<job>.log.
#
# Prints per target: executions, libFuzzer's final cov:/ft:, and crashes. Any crash,
# leak, timeout or invariant failure leaves its input in BUILD_DIR/fuzz-long/crashes/
# <target>/ and makes the script exit 1 (after running the remaining targets); a target
# whose long runs check for leaks only at the end (targets.sh: fuzz_http) reports a leak
# as a failed run (LeakSanitizer's exit status 23) with its stacks in the log, not as an
# input.
set -uo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
. "$here/targets.sh"
targets=${FUZZ_TARGETS:-$FUZZ_ALL_TARGETS}
minutes=${FUZZ_MINUTES:-240}
execs=${FUZZ_EXECS-10000000}
[ "$execs" = 0 ] && execs=""
jobs=${FUZZ_JOBS:-1}
if ! [[ $jobs =~ ^[1-9][0-9]*$ ]] || { [ -n "$execs" ] && [ "$execs" -lt "$jobs" ]; }; then
    echo "long: FUZZ_JOBS must be a number from 1 to FUZZ_EXECS" >&2
    exit 2
fi
top="$build/fuzz-long"
# A smaller quarantine (freed memory ASan keeps unreused to catch use after free) and
# shorter allocation stacks: GMime, GLib and SQLite allocate a lot per input, and with
# the defaults (256 MiB, 30 frames) page faults and unwinding took a third of fuzz_mime's
# and fuzz_http's time. Set ASAN_OPTIONS to override.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64:malloc_context_size=10}
logs=${FUZZ_LOGS:-$top/logs}
mkdir -p "$top" "$logs"
status=0
summary=""

for target in $targets; do
    bin="$build/tests/fuzz/$target"
    if [ ! -x "$bin" ]; then
        echo "long: $bin not found (configure with -DSMTPD_FUZZ=ON -DCMAKE_C_COMPILER=clang)" >&2
        exit 2
    fi
    corpus="$top/$target"
    crashes="$top/crashes/$target/"
    mkdir -p "$corpus" "$crashes"
    for seeds in "$here/corpus/$target" "$here/regressions/$target"; do
        if [ -d "$seeds" ] && [ -n "$(ls -A "$seeds" 2>/dev/null)" ]; then
            cp -n "$seeds"/* "$corpus/" 2>/dev/null || true
        fi
    done
    read -r -a extra <<< "$(fuzz_long_flags "$target")"
    echo "long: $target: $( [ -n "$execs" ] && echo "$execs runs or ")$minutes min," \
        "$jobs job(s), corpus $corpus, logs $logs/$target*.log"
    pids=()
    run_logs=()
    for ((job = 1; job <= jobs; job++)); do
        limit=(-max_total_time=$((minutes * 60)))
        if [ -n "$execs" ]; then
            # the first job takes what does not divide evenly
            limit+=(-runs=$((execs / jobs + (job == 1 ? execs % jobs : 0))))
        fi
        log="$logs/$target.log"
        [ "$jobs" -gt 1 ] && log="$logs/$target.$job.log"
        run_logs+=("$log")
        timeout $((minutes * 60 + 600)) nice -n 15 "$bin" "$corpus" \
            -dict="$(fuzz_dict "$target" "$here")" -max_len="$(fuzz_max_len "$target")" \
            -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
            -artifact_prefix="$crashes" "${limit[@]}" "${extra[@]}" > "$log" 2>&1 &
        pids+=($!)
    done
    rc=0
    for pid in "${pids[@]}"; do
        wait "$pid" || rc=$?
    done
    n=0
    cov=""
    for log in "${run_logs[@]}"; do
        ran=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        if [ -z "$ran" ]; then
            ran=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
        fi
        n=$((n + ${ran:-0}))
        cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
        if [ $rc -ne 0 ]; then
            grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$log" | head -n 10 >&2 || true
        fi
    done
    found=$(find "$crashes" -type f | wc -l)
    line="$target: $n execs, ${cov:-cov: ?}, crashes: $found"
    if [ $rc -ne 0 ] || [ "$found" -ne 0 ]; then
        line="$line FAILED (rc $rc; inputs in $crashes)"
        status=1
    fi
    echo "long: $line"
    summary="$summary$line"$'\n'
done

echo "long: summary"
printf '%s' "$summary"
exit $status
