#!/usr/bin/env bash
# Installs the outside tools the tests use (idempotent; runs as root in CI).
set -euo pipefail
need=()
for pkg in procps util-linux zsh fish groff-base man-db; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
for extra in .ci/install-*.sh; do
  [ -e "$extra" ] && bash "$extra"
done
exit 0
