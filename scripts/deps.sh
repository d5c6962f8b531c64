#!/usr/bin/env bash
# deps.sh GROUP...: install the Debian packages a make target needs, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

declare -A PKGS=(
  [build]="gcc make cmake pkg-config libc6-dev libh2o-evloop-dev libssl-dev"
  [test]="libcmocka-dev libuv1-dev clang libclang-rt-14-dev python3 curl procps util-linux mount prometheus valgrind e2fsprogs xfsprogs btrfs-progs"
  [container]="podman buildah runc mmdebstrap uidmap catatonit netavark aardvark-dns"
  [deploy]="nodejs prometheus"
  [browser]="chromium nodejs"
  [bench]="curl wrk h2o sqlite3 libsqlite3-dev redis-server redis-tools nghttp2-client gnuplot-nox hyperfine"
)

want=()
for group in "$@"; do
  [[ -n "${PKGS[$group]+x}" ]] || { echo "deps.sh: unknown group '$group'" >&2; exit 2; }
  for p in ${PKGS[$group]}; do want+=("$p"); done
done

missing=()
for p in "${want[@]}"; do
  # nodejs may come from another repository than Debian's; a working node is enough.
  if [[ $p == nodejs ]] && command -v node >/dev/null && command -v npm >/dev/null; then continue; fi
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [[ $status == ii* ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ ${#missing[@]} -gt 0 ]] && printf '%s\n' "${missing[@]}" | grep -qx nodejs; then
  missing+=(npm)
fi

cmd="apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
  echo "deps.sh: run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
$cmd
