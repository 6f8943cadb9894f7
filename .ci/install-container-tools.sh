#!/usr/bin/env bash
# Installs the container runtime the container tests run ganger under (idempotent, quiet; root
# in CI): podman with runc (crun refuses a hybrid cgroup layout), catatonit (podman's pause
# process) and busybox-static (the only shell and tools in the test containers' rootfs).
# No image is pulled: the tests build each container from a directory.
set -euo pipefail

need=()
for pkg in podman runc catatonit busybox-static; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
