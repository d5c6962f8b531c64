#!/bin/sh
# Build a local stand-in for the registry image debian:bookworm-slim from the Debian
# mirror (no container registry needed) and load it into podman's storage.
#
#   deploy/image/base-image.sh [--print-tarball]
#
# The root filesystem tarball is cached in ${XDG_CACHE_HOME:-$HOME/.cache}/visits/, keyed by
# a hash of this recipe, so later runs only import it (~2 s). Set VISITS_BASE_REBUILD=1 to
# rebuild it, VISITS_DEBIAN_MIRROR to use another mirror (default: the first Debian mirror
# in the host's apt sources, else http://deb.debian.org/debian).
# Needs: mmdebstrap, podman; run as root (mmdebstrap --mode=root, podman's storage).
set -eu

suite=bookworm
name=docker.io/library/debian:bookworm-slim
cache_dir=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/visits

die() { echo "base-image.sh: $*" >&2; exit 1; }

mirror=${VISITS_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources \
        2>/dev/null | head -n 1)
fi
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\/debian\)\/* .*/\2/p' \
        /etc/apt/sources.list 2>/dev/null | head -n 1)
fi
mirror=${mirror:-http://deb.debian.org/debian}
security=$(echo "$mirror" | sed 's|/debian$|/debian-security|')

# Settings of the slim image, written in by the hook below: no apt caches, compressed
# indexes and no translations (so an "apt-get update" layer stays small), no docs.
apt_conf='Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::GzipIndexes "true";
Acquire::Languages "none";
APT::AutoRemove::SuggestsImportant "false";'
dpkg_excludes='path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*'

key=$(printf '%s\n' "$suite" "$mirror" "$apt_conf" "$dpkg_excludes" "recipe 2" | sha256sum | cut -c1-12)
tarball=$cache_dir/debian-$suite-slim-$key.tar

if [ "${1:-}" = "--print-tarball" ]; then
    echo "$tarball"
    exit 0
fi

if [ ! -s "$tarball" ] || [ "${VISITS_BASE_REBUILD:-0}" = 1 ]; then
    command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install mmdebstrap)"
    mkdir -p "$cache_dir"
    tmp=$tarball.tmp.$$
    excl=$cache_dir/slim-excludes.$$
    trap 'rm -f "$tmp" "$excl"' EXIT
    printf '%s\n' "$dpkg_excludes" >"$excl"
    echo "base-image.sh: building $suite minbase from $mirror into $tarball" >&2
    start=$(date +%s)
    # The merged-usr hook sets up the /usr merge the debootstrap way, without the usrmerge
    # package (which would pull in perl). Hooks get the chroot path as $1. A --dpkgopt
    # file lands in the chroot as dpkg.cfg.d/99mmdebstrap (kept, renamed: the slim image
    # keeps its excludes too). Check-Valid-Until is off only while bootstrapping
    # (snapshot mirrors serve expired Release files); the image gets the slim apt settings.
    mmdebstrap --variant=minbase --mode=root --format=tar \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --aptopt='Acquire::Languages "none"' \
        --dpkgopt="$excl" \
        --customize-hook='mv "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$1/etc/dpkg/dpkg.cfg.d/slim-excludes"' \
        --customize-hook="printf '%s\\n' '$apt_conf' > \"\$1/etc/apt/apt.conf.d/slim-image\"" \
        --customize-hook='rm -f "$1/etc/apt/apt.conf.d/99mmdebstrap"' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log "$1"/var/log/apt/* "$1"/tmp/*' \
        --customize-hook='rm -f "$1/etc/hostname" "$1/etc/resolv.conf"; : > "$1/etc/machine-id"' \
        "$suite" "$tmp" \
        "deb $mirror $suite main" \
        "deb $mirror $suite-updates main" \
        "deb $security $suite-security main" >&2
    mv "$tmp" "$tarball"
    rm -f "$excl"
    trap - EXIT
    echo "base-image.sh: built in $(($(date +%s) - start)) s, $(du -m "$tarball" | cut -f1) MB" >&2
fi

command -v podman >/dev/null || die "podman not found (apt-get install podman)"
podman import --quiet --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$name" >/dev/null
echo "$name"
