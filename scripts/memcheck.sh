#!/usr/bin/env bash
# memcheck.sh [PYTEST ARGS...] - run mailsink's end-to-end tests with every mailsink under
# valgrind memcheck (not part of make test: 20x slower; ASan+LSan cover leaks there).
#
#   bash scripts/memcheck.sh tests/mailsink/test_store.py tests/mailsink/test_tls_auth.py
#
# Each mailsink the tests start runs as `valgrind --error-exitcode=99 --leak-check=full`;
# the fixtures fail a test whose server does not exit 0, so a memory error or a definite
# or indirect leak fails it. Logs: $MEMCHECK_LOGS (default a temporary directory), one
# per process. Uses build/mailsink (make build first).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/mailsink
[ -x "$bin" ] || { echo "memcheck: $bin not built (run make)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "memcheck: valgrind missing (apt-get install valgrind)" >&2; exit 2; }
logs=${MEMCHECK_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/memcheck.XXXXXX")}
wrap=$logs/mailsink
cat > "$wrap" <<WRAP
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \\
  --log-file=$logs/log.%p $bin "\$@"
WRAP
chmod +x "$wrap"
[ $# -gt 0 ] || set -- tests/mailsink
status=0
MAILSINK_BIN=$wrap /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" || status=$?
reports=$(find "$logs" -name 'log.*' -size +0 | wc -l)
echo "memcheck: $reports process(es) with valgrind reports; logs in $logs"
[ "$reports" -eq 0 ] || status=1
exit $status
