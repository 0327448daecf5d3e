#!/usr/bin/env bash
# Makes the local base image of the Dockerfile (BASE=local) without a registry: scripts/local-base.sh [ENGINE] [TAG]
# Debian bookworm (minbase) from Debian's mirror with debootstrap, Python 3.11 and libpython (the Python backend's
# stub links it), imported as TAG. Needs root (debootstrap) and about 40 s and 280 MB.
set -euo pipefail
engine=${1:-podman}
tag=${2:-localhost/tritonkit-local-base:bookworm}
if ! command -v debootstrap >/dev/null; then
  echo "error: debootstrap is not installed; fix: sudo apt-get install -y debootstrap" >&2
  exit 2
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "== debootstrap bookworm into $rootfs (about 40 s)"
debootstrap --variant=minbase --include=python3,python3-venv,libpython3.11,ca-certificates bookworm "$rootfs" \
  http://deb.debian.org/debian >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
echo "== importing it as $tag"
tar -C "$rootfs" -c . | "$engine" import --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "== $tag is ready"
