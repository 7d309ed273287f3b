#!/usr/bin/env bash
# arm64 binaries under emulation: Debian's qemu-user-static registered with
# binfmt_misc (as root; mounts binfmt_misc when the machine has not).
set -euo pipefail
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support >/dev/null
  else
    echo "qemu-user-static is missing (e.g. sudo apt-get install qemu-user-static binfmt-support)" >&2
    exit 1
  fi
fi
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "qemu-aarch64 is not registered with binfmt_misc" >&2; exit 1; }
