#!/usr/bin/env bash
# The example embedder (examples/visits-uv.c), built the way its users build it: install
# the project into a temporary prefix, compile the example with
# `cc ... $(pkg-config --cflags --libs libvisits libuv)` against that installed copy, then
# run check.py on it (concurrent clients, bytes on disk, SIGTERM, interval mode).
#
# usage: run.sh BUILD_DIR SOURCE_DIR CC CMAKE [CFLAGS]
# CFLAGS: extra flags for compiling and linking (the sanitizer runtime of a sanitized
# build). Exit 77 (skipped) if libuv1-dev is missing, except under CI=true.
set -euo pipefail

if [ $# -lt 4 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR CC CMAKE [CFLAGS]" >&2
    exit 2
fi
build=$1 src=$2 cc=$3 cmake=$4 extra=${5:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/visits-example.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset LD_LIBRARY_PATH LD_PRELOAD
export LC_ALL=C

fail() {
    echo "example: FAIL: $*" >&2
    exit 1
}

if ! pkg-config --exists libuv; then
    [ "${CI:-}" != true ] || fail "pkg-config finds no libuv (Debian: libuv1-dev, scripts/deps.sh test)"
    echo "example: SKIP: pkg-config finds no libuv (Debian: libuv1-dev)" >&2
    exit 77
fi

"$cmake" --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install $build failed"; }
pc=$(find "$work/prefix" -name libvisits.pc)
[ -n "$pc" ] || fail "no libvisits.pc under $work/prefix"
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(dirname "$(dirname "$pc")")

# shellcheck disable=SC2046,SC2086 # pkg-config output and $extra are lists of flags
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wformat=2 $extra "$src/examples/visits-uv.c" -o "$work/visits-uv" \
    $(pkg-config --cflags --libs libvisits libuv) -Wl,-rpath,"$libdir" ||
    fail "compiling examples/visits-uv.c against the installed libvisits failed"
loaded=$(ldd "$work/visits-uv" | awk '$1 ~ /^libvisits\.so/ { print $3 }')
[ "$(realpath "$loaded")" == "$(realpath "$libdir"/libvisits.so.*.*.*)" ] ||
    fail "visits-uv loads [$loaded], not the libvisits installed in $libdir"
echo "example: built against $libdir ($(pkg-config --modversion libvisits)), libuv $(pkg-config --modversion libuv)"

python3 "$src/tests/example/check.py" "$work/visits-uv" "$work/run"
