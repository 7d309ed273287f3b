#!/usr/bin/env bash
# Debian packages the tests run for real: mosquitto (MQTT), postgresql (the
# intake and loop service on an external database), and the OCI tool
# chain of the containers tier (buildah, podman with runc, docker-registry,
# mmdebstrap). As root with apt-get, install what is missing; otherwise name it.
set -euo pipefail
declare -A binary=(
  [mosquitto]=mosquitto [buildah]=buildah [podman]=podman [runc]=runc
  [mmdebstrap]=mmdebstrap [docker-registry]=docker-registry
  [uidmap]=newuidmap [fuse-overlayfs]=fuse-overlayfs
  [postgresql]=pg_ctlcluster
)
missing=()
for pkg in "${!binary[@]}"; do
  bin=${binary[$pkg]}
  command -v "$bin" >/dev/null 2>&1 || test -x "/usr/sbin/$bin" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "missing Debian packages: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
