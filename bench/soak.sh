#!/usr/bin/env bash
# soak.sh - run mailsink under mixed load for --minutes N (default 30) and check that its
# RSS, open file descriptors and threads stay flat; exit 0 only when they do, the server
# stayed up and stopped cleanly, every normal client got the replies it expected and the
# store holds what the API says.
#
#   bench/soak.sh [--minutes 30] [--mailsink PATH] [--smtp-load PATH] [--json FILE] [--keep]
#
# Everything is done by soak.py beside this file (Python 3 standard library only); its
# header comment says what load is sent, what is sampled and how the verdict is reached.
# `make test` runs the 2-minute version (ctest mailsink.soak). For the long run on a
# shared machine: nice -n 10 bench/soak.sh --minutes 30 --json soak.json
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec /usr/bin/python3 "$here/soak.py" "$@"
