#!/usr/bin/env bash
# Debian packages the tests run for real: mosquitto (MQTT), postgresql (the
# intake and loop service on an external database), prometheus (promtool's
# rule tests and a real server scraping an agent and an intake; installed
# without its recommends, which would add node-exporter), chromium (the
# headless screenshot check of the MLflow and Evidently pages, `make ui-check`;
# without recommends too), and the OCI tool
# chain of the containers tier (buildah, podman with runc, docker-registry,
# mmdebstrap). As root with apt-get, install what is missing; otherwise name it.
set -euo pipefail
declare -A binary=(
  [mosquitto]=mosquitto [buildah]=buildah [podman]=podman [runc]=runc
  [mmdebstrap]=mmdebstrap [docker-registry]=docker-registry
  [uidmap]=newuidmap [fuse-overlayfs]=fuse-overlayfs
  [postgresql]=pg_ctlcluster
)
# installed with --no-install-recommends (see above)
declare -A lean=([prometheus]=promtool [chromium]=chromium)
missing=()
missing_lean=()
for pkg in "${!lean[@]}"; do
  command -v "${lean[$pkg]}" >/dev/null 2>&1 || missing_lean+=("$pkg")
done
for pkg in "${!binary[@]}"; do
  bin=${binary[$pkg]}
  command -v "$bin" >/dev/null 2>&1 || test -x "/usr/sbin/$bin" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_lean[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]} ${missing_lean[*]}"
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ ${#missing_lean[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing_lean[@]}" >/dev/null
  fi
else
  all=("${missing[@]}" "${missing_lean[@]}")
  echo "missing Debian packages: ${all[*]} (e.g. sudo apt-get install ${all[*]})" >&2
  exit 1
fi
