#!/usr/bin/env bash
# Prove that the project installs every dependency itself: run `CI=true bash .ci/run` on a
# fresh clone inside a new Debian 12 chroot that holds only what a bare machine brings
# (python3, make, git) and none of the toolchains, so a missing install step fails here
# even where the developer's own machine has the package from earlier work.
#
#   tools/clean_room.sh [ROOTFS]     as root; installs mmdebstrap if it is missing
#   RUNS=3 tools/clean_room.sh       .ci/run three times in a row, fresh clones, one chroot
#
# Bound in read-only, as a machine of the project's kind has them: the CPU torch wheel
# (/opt/wheels), the CUDA toolkit (/usr/local/cuda-*; not a Debian package) and ../shared.
# The host's CA bundle is copied in too (a network that re-signs TLS needs its CA for pip).
# The logs are ROOTFS.runN.log; the chroot is removed afterwards unless KEEP=1.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$(cd "$REPO/.." && pwd)/shared
ROOTFS=${1:-/tmp/tbn-clean-room}
[ "$(id -u)" = 0 ] || { echo "clean_room: run as root" >&2; exit 1; }
if ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap \
    > /dev/null || { echo "clean_room: apt-get install mmdebstrap failed" >&2; exit 1; }
fi

mounts=()
bind() { # bind SRC DEST [ro]
  mkdir -p "$ROOTFS$2"
  mount --rbind "$1" "$ROOTFS$2"
  mounts=("$ROOTFS$2" "${mounts[@]}")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$ROOTFS$2"; fi
}
# Never remove a chroot that still has a mount in it: /dev is bound read-write.
remove_rootfs() {
  if grep -q " $ROOTFS/" /proc/mounts; then
    echo "clean_room: $ROOTFS still has mounts; not removing it" >&2; return 1
  fi
  rm -rf --one-file-system "$ROOTFS"
}
cleanup() {
  for m in "${mounts[@]}"; do umount -R -l "$m" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || remove_rootfs
}
trap cleanup EXIT

remove_rootfs
echo "clean_room: debootstrapping Debian 12 into $ROOTFS"
mmdebstrap --quiet --variant=minbase --include=python3,make,git,ca-certificates bookworm "$ROOTFS"
echo "clean_room: packages in the chroot before CI: $(chroot "$ROOTFS" dpkg-query -f '.\n' -W | wc -l)"
for tool in clang arm-none-eabi-gcc riscv64-unknown-elf-gcc qemu-system-arm gcc; do
  if chroot "$ROOTFS" sh -c "command -v $tool" >/dev/null; then
    echo "clean_room: $tool is already in the chroot; it is not clean" >&2; exit 1
  fi
done
cp /etc/resolv.conf /etc/hosts "$ROOTFS/etc/"  # names, localhost included, as the host resolves them
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
mount -t proc proc "$ROOTFS/proc"; mounts=("$ROOTFS/proc" "${mounts[@]}")
bind /dev /dev
if [ -d /opt/wheels ]; then bind /opt/wheels /opt/wheels ro; fi
for cuda in /usr/local/cuda-*; do
  if [ -d "$cuda" ]; then bind "$cuda" "$cuda" ro; ln -sfn "$cuda" "$ROOTFS/usr/local/cuda"; fi
done
if [ -d "$SHARED" ]; then bind "$SHARED" /work/shared ro; fi
status=0
for run in $(seq 1 "${RUNS:-1}"); do  # each run on a fresh clone, as CI's are
  rm -rf "$ROOTFS/work/tbn"
  git clone --quiet "$REPO" "$ROOTFS/work/tbn"
  log="$ROOTFS.run$run.log"
  echo "clean_room: run $run: CI=true bash .ci/run in the chroot (log: $log)"
  start=$(date +%s)
  chroot "$ROOTFS" env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt CI=true bash -c 'cd /work/tbn && bash .ci/run' \
    > "$log" 2>&1 || status=$?
  tail -16 "$log"
  echo "clean_room: run $run: .ci/run exited ${status} after $(( $(date +%s) - start )) s"
  [ "$status" = 0 ] || break
done
exit "$status"
