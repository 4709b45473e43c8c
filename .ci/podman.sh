#!/usr/bin/env bash
# CI (as root): make podman runnable for tests/test_containers.py. Idempotent: a second run
# installs nothing, reuses the cached root filesystem and takes about a second.
#
#   eval "$(bash .ci/podman.sh)"     # exports CONTAINERS_CONF and FAAS_TEST_ROOTFS
#
# - apt: podman, and runc as its runtime (Debian's default, crun, fails on these machines:
#   setrlimit RLIMIT_NOFILE and cgroup hybrid mode).
# - A minimal Debian bookworm root filesystem built with debootstrap into $FAAS_CI_CACHE/rootfs
#   (default /var/cache/faas-ci/rootfs), reused if present. The tests mount the host's Python
#   and venv into it at the same paths, so the image holds no Python of its own: only the shared
#   libraries CPython's standard library links against (libpython3.11-stdlib's dependencies:
#   libsqlite3, libssl, libffi, ...; plus libexpat1 for pyexpat). Same glibc (2.36) as the host.
# - $FAAS_CI_CACHE/containers.conf: runtime runc and ulimits root may set here. The product
#   hard-codes neither; CI selects them with CONTAINERS_CONF.
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail

cache=${FAAS_CI_CACHE:-/var/cache/faas-ci}
rootfs=$cache/rootfs
conf=$cache/containers.conf
suite=bookworm
include=libpython3.11-stdlib,libexpat1

say() { echo "podman.sh: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "run me as root (apt-get, debootstrap)"
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

missing=()
for pkg in podman runc debootstrap; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=300 update -q >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -q podman runc debootstrap >&2
fi

mkdir -p "$cache"
if [ ! -x "$rootfs/bin/sh" ]; then
    # the mirror apt already uses (deb822 sources first, then a classic sources.list)
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    say "debootstrap $suite (minbase + $include) from $mirror into $rootfs"
    rm -rf "$rootfs.partial"
    start=$(date +%s)
    debootstrap --variant=minbase --include="$include" "$suite" "$rootfs.partial" "$mirror" \
        >"$cache/debootstrap.log" 2>&1 || {
            say "debootstrap failed; last lines of $cache/debootstrap.log:"
            tail -n 20 "$cache/debootstrap.log" >&2
            exit 1
        }
    rm -rf "$rootfs.partial"/var/cache/apt/archives/*.deb "$rootfs.partial"/var/lib/apt/lists/*
    rm -rf "$rootfs"
    mv "$rootfs.partial" "$rootfs"     # only a complete tree ever sits at $rootfs
    say "rootfs ready in $(( $(date +%s) - start )) s ($(du -sh "$rootfs" | cut -f1))"
fi

tmp=$(mktemp "$conf.XXXXXX")
cat >"$tmp" <<'CONF'
# Written by .ci/podman.sh for the faas tests: what podman needs on these CI machines.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
chmod 644 "$tmp"
mv "$tmp" "$conf"

# Fail here, with podman's own message, rather than in the middle of the tests.
if ! out=$(CONTAINERS_CONF=$conf podman run --rm --network=host --rootfs "$rootfs" /bin/sh -c 'echo ok' 2>&1) \
        || [ "$out" != ok ]; then
    say "smoke test failed: podman run --rootfs $rootfs: $out"
    exit 1
fi
say "podman $(podman --version | awk '{print $3}') with runc works; rootfs $rootfs"

echo "export CONTAINERS_CONF=$conf"
echo "export FAAS_TEST_ROOTFS=$rootfs"
