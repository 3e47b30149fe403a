# targets.sh - sourced by smoke.sh and long.sh: the fuzz targets, and for each its
# dictionary and the longest input worth trying (-max_len).
# shellcheck shell=bash
FUZZ_ALL_TARGETS="fuzz_session fuzz_parse fuzz_body fuzz_sasl fuzz_search fuzz_mime fuzz_cli fuzz_config fuzz_http"

# fuzz_dict TARGET HERE: the dictionary file
fuzz_dict() {
    case $1 in
    fuzz_search) echo "$2/search.dict" ;;
    fuzz_mime) echo "$2/mime.dict" ;;
    fuzz_sasl) echo "$2/sasl.dict" ;;
    fuzz_cli | fuzz_config) echo "$2/config.dict" ;;
    fuzz_http) echo "$2/http.dict" ;;
    *) echo "$2/smtp.dict" ;;
    esac
}

# fuzz_max_len TARGET: inputs beyond this teach little and slow the run down
fuzz_max_len() {
    case $1 in
    fuzz_cli) echo 1024 ;;
    # a message of a few parts and headers; as libFuzzer let inputs grow towards 4 KiB
    # fuzz_mime fell from ~1,450 to ~600 executions a second
    fuzz_mime) echo 2048 ;;
    fuzz_http) echo 4096 ;;
    *) echo 8192 ;;
    esac
}

# fuzz_long_flags TARGET: libFuzzer flags for the long runs (long.sh) of this target only
fuzz_long_flags() {
    case $1 in
    # libFuzzer checks for leaks after every input whose mallocs and frees differ, by
    # stopping the world and scanning the heap; with the HTTP server's and the store
    # writer's threads and SQLite's caches that is almost every input (a third of the
    # run's time). LeakSanitizer still checks the whole process when the run ends, and
    # the 30-second smoke runs in make test keep the per-input check.
    fuzz_http) echo "-detect_leaks=0" ;;
    esac
}
