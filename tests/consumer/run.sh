#!/usr/bin/env bash
# External-consumer test: install the project from a build directory into a temporary
# prefix, then build consumer.c against that installed copy the ways a user would:
#   (a) cc + pkg-config (shared library, rpath), and (a') pkg-config --static;
#   (b) a CMake project using find_package(libvisits MAJOR.MINOR) and visits::visits (and
#       visits::visits_static);
# run each on a fresh counter file and check its output and the bytes it left. Also checks
# what is installed, the shared library's exported symbols and the installed visitsctl.
#
# usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR CC CMAKE GENERATOR VERSION [CFLAGS]
# CFLAGS: extra flags for compiling and linking the consumers (the sanitizer runtime of a
# sanitized build).
set -euo pipefail

if [ $# -lt 6 ]; then
    echo "usage: $0 BUILD_DIR CONSUMER_SOURCE_DIR CC CMAKE GENERATOR VERSION [CFLAGS]" >&2
    exit 2
fi
build=$1 src=$2 cc=$3 cmake=$4 generator=$5 version=$6 extra=${7:-}
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
# The SONAME's version: before 1.0 major.minor (a minor release may change the ABI), then
# the major version alone.
if [ "$major" = 0 ]; then soname=0.$minor; else soname=$major; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/visits-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
unset LD_LIBRARY_PATH LD_PRELOAD
export LC_ALL=C

fail() {
    echo "consumer: FAIL: $*" >&2
    exit 1
}
step() { echo "consumer: $*"; }

# Runs a command, logging its output to $work/$1.log; on failure shows the log and fails.
logged() {
    local name=$1
    shift
    if ! "$@" >"$work/$name.log" 2>&1; then
        cat "$work/$name.log" >&2
        fail "$name: command failed: $*"
    fi
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    [ "$2" == "$3" ] || fail "$1: expected [$2], got [$3]"
}

# Asserts that the directory $2 (after resolving ".." and links) lies inside $prefix.
expect_in_prefix() {
    local real
    real=$(realpath -m "$2")
    case "$real/" in
    "$(realpath "$prefix")"/*) ;;
    *) fail "$1 points outside the install prefix $prefix: $2" ;;
    esac
}

# run_consumer NAME BINARY: runs it twice on a fresh file, checks output and bytes.
run_consumer() {
    local name=$1 bin=$2 file=$work/$1.visits out
    out=$("$bin" "$file") || fail "$name: $bin $file exited $?"
    expect_eq "$name: first run" "libvisits $version: incr 1, add 42, read 42" "$out"
    expect_eq "$name: bytes of $file" "34 32 0a" "$(od -An -tx1 "$file" | xargs)"
    out=$("$bin" "$file") || fail "$name: second run of $bin exited $?"
    expect_eq "$name: second run" "libvisits $version: incr 43, add 84, read 84" "$out"
    expect_eq "$name: bytes of $file" "38 34 0a" "$(od -An -tx1 "$file" | xargs)"
    step "$name: ok"
}

# needed BINARY: its DT_NEEDED libraries, one a line.
needed() {
    readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

# resolved BINARY LIB: the path the dynamic loader picks for LIB.
resolved() {
    ldd "$1" | awk -v lib="$2" '$1 == lib { print $3 }'
}

# ---- install ------------------------------------------------------------------------------
step "installing $build into $prefix"
logged install "$cmake" --install "$build" --prefix "$prefix"

mapfile -t pcs < <(find "$prefix" -name libvisits.pc)
[ ${#pcs[@]} -eq 1 ] || fail "expected one libvisits.pc under $prefix, found ${#pcs[@]}"
pcdir=$(dirname "${pcs[0]}")
libdir=$(dirname "$pcdir")
[ "$(basename "$pcdir")" == pkgconfig ] || fail "libvisits.pc is not in a pkgconfig directory: $pcdir"

for f in "$prefix/include/visits.h" "$libdir/libvisits.so.$version" "$libdir/libvisits.a" \
    "$libdir/cmake/libvisits/libvisitsConfig.cmake" \
    "$libdir/cmake/libvisits/libvisitsConfigVersion.cmake" \
    "$libdir/cmake/libvisits/libvisitsTargets.cmake" "$prefix/bin/visitsctl"; do
    [ -f "$f" ] || fail "not installed: $f"
done
for l in "libvisits.so.$soname:libvisits.so.$version" "libvisits.so:libvisits.so.$soname"; do
    expect_eq "symlink $libdir/${l%%:*}" "${l#*:}" "$(readlink "$libdir/${l%%:*}")"
done
cmp -s "$prefix/include/visits.h" "$src/../../include/visits.h" ||
    fail "installed visits.h differs from include/visits.h"
expect_eq "headers installed" "visits.h" "$(cd "$prefix/include" && find . -type f | sed 's|^\./||')"
expect_eq "SONAME" "libvisits.so.$soname" \
    "$(readelf -d "$libdir/libvisits.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"

# ---- exported symbols -----------------------------------------------------------------------
# The shared library exports exactly the functions the installed header declares, plus
# visits_testing_syscall (fault injection for the project's own tests, see
# libvisits/visits_testing.h). Nothing without the visits_ prefix.
exported=$(nm -D --defined-only "$libdir/libvisits.so.$version" | awk '{ print $NF }' | sort)
declared=$( (
    sed -n 's/^VISITS_API .*[ *]\(visits_[a-z0-9_]*\)(.*/\1/p' "$prefix/include/visits.h"
    echo visits_testing_syscall
) | sort -u)
[ -n "$exported" ] || fail "nm -D found no exported symbols in libvisits.so.$version"
[ "$(echo "$declared" | wc -l)" -gt 10 ] || fail "could not read the declarations of visits.h"
not_visits=$(echo "$exported" | grep -v '^visits_' || true)
[ -z "$not_visits" ] || fail "libvisits.so exports symbols without the visits_ prefix:" "$(xargs <<<"$not_visits")"
extra_syms=$(comm -23 <(echo "$exported") <(echo "$declared"))
[ -z "$extra_syms" ] || fail "libvisits.so exports symbols visits.h does not declare:" "$(xargs <<<"$extra_syms")"
missing_syms=$(comm -13 <(echo "$exported") <(echo "$declared"))
[ -z "$missing_syms" ] || fail "visits.h declares symbols libvisits.so does not export:" "$(xargs <<<"$missing_syms")"
# The static library cannot hide its internals, but they keep the prefix too (ASan adds
# an __odr_asan.NAME marker for each global of a sanitized build).
static_globals=$(nm -g --defined-only "$libdir/libvisits.a" | awk 'NF == 3 { print $3 }' |
    grep -v '^__odr_asan\.visits_' | sort -u)
not_visits=$(echo "$static_globals" | grep -v '^visits_' || true)
[ -z "$not_visits" ] || fail "libvisits.a defines global symbols without the visits_ prefix:" "$(xargs <<<"$not_visits")"
step "exports: $(echo "$exported" | wc -l) symbols, all declared in visits.h"

# ---- (a) cc + pkg-config ----------------------------------------------------------------------
export PKG_CONFIG_PATH=$pcdir
logged pkg-config pkg-config --exists --print-errors libvisits
expect_eq "pkg-config --modversion" "$version" "$(pkg-config --modversion libvisits)"
for flag in $(pkg-config --cflags-only-I libvisits); do
    expect_in_prefix "pkg-config --cflags" "${flag#-I}"
done
[ -n "$(pkg-config --libs-only-L libvisits)" ] || fail "pkg-config --libs gives no -L"
for flag in $(pkg-config --libs-only-L libvisits); do
    expect_in_prefix "pkg-config --libs" "${flag#-L}"
done
# shellcheck disable=SC2046,SC2086 # pkg-config output and $extra are lists of flags
logged cc-shared "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror $extra "$src/consumer.c" \
    -o "$work/consumer-pc" $(pkg-config --cflags --libs libvisits) -Wl,-rpath,"$libdir"
needed "$work/consumer-pc" | grep -qx "libvisits.so.$soname" ||
    fail "consumer-pc does not load libvisits.so.$soname: $(needed "$work/consumer-pc" | xargs)"
expect_eq "consumer-pc loads" "$(realpath "$libdir/libvisits.so.$soname")" \
    "$(realpath "$(resolved "$work/consumer-pc" "libvisits.so.$soname")")"
run_consumer pkg-config "$work/consumer-pc"

# (a') static: the archive alone, plus what pkg-config --static says it needs.
# shellcheck disable=SC2046,SC2086
logged cc-static "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror $extra "$src/consumer.c" \
    -o "$work/consumer-static" $(pkg-config --cflags libvisits) \
    -Wl,-Bstatic $(pkg-config --static --libs libvisits) -Wl,-Bdynamic
if needed "$work/consumer-static" | grep -q '^libvisits'; then
    fail "consumer-static still loads a shared libvisits: $(needed "$work/consumer-static" | xargs)"
fi
run_consumer pkg-config-static "$work/consumer-static"

# ---- (b) CMake find_package ---------------------------------------------------------------------
logged cmake-configure env CFLAGS="$extra" LDFLAGS="$extra" "$cmake" -G "$generator" \
    -S "$src/cmake" -B "$work/cmake-build" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DVISITS_CONSUMER_WANT="$major.$minor"
found=$(sed -n 's/^libvisits_DIR:PATH=//p' "$work/cmake-build/CMakeCache.txt")
expect_in_prefix "find_package(libvisits) found $found, which" "$found"
logged cmake-build "$cmake" --build "$work/cmake-build"
expect_eq "app loads" "$(realpath "$libdir/libvisits.so.$soname")" \
    "$(realpath "$(resolved "$work/cmake-build/app" "libvisits.so.$soname")")"
if needed "$work/cmake-build/app_static" | grep -q '^libvisits'; then
    fail "app_static loads a shared libvisits: $(needed "$work/cmake-build/app_static" | xargs)"
fi
run_consumer cmake "$work/cmake-build/app"
run_consumer cmake-static "$work/cmake-build/app_static"

# The version file must refuse another major version.
if env CFLAGS="$extra" LDFLAGS="$extra" "$cmake" -G "$generator" -S "$src/cmake" \
    -B "$work/cmake-build-major" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
    -DVISITS_CONSUMER_WANT=$((major + 1)).0 >"$work/cmake-major.log" 2>&1; then
    fail "find_package(libvisits $((major + 1)).0) accepted the installed $version"
fi
grep -q "libvisitsConfig.cmake, version: $version" "$work/cmake-major.log" ||
    fail "find_package(libvisits $((major + 1)).0) failed for another reason: $(cat "$work/cmake-major.log")"
step "cmake: find_package(libvisits $((major + 1)).0) refused, as it should"
# Before 1.0, an older minor version is refused too (0.N may break 0.N-1's API).
if ((major == 0 && minor > 0)); then
    if env CFLAGS="$extra" LDFLAGS="$extra" "$cmake" -G "$generator" -S "$src/cmake" \
        -B "$work/cmake-build-minor" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
        -DVISITS_CONSUMER_WANT=0.$((minor - 1)) >"$work/cmake-minor.log" 2>&1; then
        fail "find_package(libvisits 0.$((minor - 1))) accepted the installed $version"
    fi
    grep -q "libvisitsConfig.cmake, version: $version" "$work/cmake-minor.log" ||
        fail "find_package(libvisits 0.$((minor - 1))) failed for another reason: $(cat "$work/cmake-minor.log")"
    step "cmake: find_package(libvisits 0.$((minor - 1))) refused before 1.0, as it should"
fi

# ---- the installed visitsctl reads what the consumers wrote -----------------------------------
expect_eq "installed visitsctl loads" "$(realpath "$libdir/libvisits.so.$soname")" \
    "$(realpath "$(resolved "$prefix/bin/visitsctl" "libvisits.so.$soname")")"
expect_eq "installed visitsctl --version" "visitsctl $version" "$("$prefix/bin/visitsctl" --version)"
expect_eq "installed visitsctl get" "84" "$("$prefix/bin/visitsctl" get "$work/cmake.visits")"
step "installed visitsctl: ok"
step "all ok"
