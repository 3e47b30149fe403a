#!/usr/bin/env bash
# `make install` works: install into a temporary prefix, then build the README example
# with nothing but pkg-config's answer for libsmtpd, against the shared and the static
# library, and check only smtpd_* symbols leave the shared one.
set -euo pipefail
src_dir=$1 build_dir=$2 cc=${CC:-cc} SANITIZE_FLAGS=${SANITIZE_FLAGS:-}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build_dir" --prefix "$prefix" > /dev/null
pcdir=$(dirname "$(find "$prefix" -name libsmtpd.pc | head -n1)")
export PKG_CONFIG_PATH=$pcdir
test "$(pkg-config --modversion libsmtpd)" = "$(sed -n 's/^#define SMTPD_VERSION_STRING "\(.*\)"/\1/p' "$src_dir/include/smtpd.h")"
test -f "$prefix/include/smtpd.h"

awk '/^```c$/{on=1; next} /^```$/{on=0} on' "$src_dir/README.md" > "$prefix/example.c"
$cc -std=c11 -Wall -Werror "$prefix/example.c" $(pkg-config --cflags --libs libsmtpd) \
    $SANITIZE_FLAGS -Wl,-rpath,"$(pkg-config --variable=libdir libsmtpd)" -o "$prefix/shared"
$cc -std=c11 -Wall -Werror "$prefix/example.c" -static-libgcc \
    $(pkg-config --cflags libsmtpd) "$(pkg-config --variable=libdir libsmtpd)/libsmtpd.a" \
    $(pkg-config --libs --static libevent_core libevent_pthreads libevent_openssl openssl) -lpthread $SANITIZE_FLAGS \
    -o "$prefix/static"

# The public header also compiles as C99 and as C++ (when a C++ compiler is here).
echo '#include <smtpd.h>' | $cc -std=c99 -Wall -Wpedantic -Werror -I"$prefix/include" -x c -fsyntax-only -
if command -v c++ > /dev/null; then
    echo '#include <smtpd.h>' | c++ -Wall -Werror -I"$prefix/include" -x c++ -fsyntax-only -
fi

lib=$(find "$prefix" -name 'libsmtpd.so.*.*' | head -n1)
leaked=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TDB]/ && $3 !~ /^smtpd_/ && $3 !~ /^_/ {print $3}')
if [ -n "$leaked" ]; then
    echo "symbols other than smtpd_* exported: $leaked"
    exit 1
fi
echo "install: 1 passed, 0 failed"
