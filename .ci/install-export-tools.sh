#!/usr/bin/env bash
# Installs the real tools the export tests run (idempotent, quiet; root in CI):
#   systemd-analyze (systemd), supervisord (supervisor), runsvdir/chpst/svlogd (runit),
#   kubernetes-validate and check-jsonschema (PyPI; the latter ships the Compose spec schema),
#   and PyYAML, the YAML 1.1 reader the YAML exports are read back with.
# No daemon is started: the tests run supervisord and runsvdir on their own config.
set -euo pipefail

need=()
for pkg in systemd supervisor runit; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ "${#need[@]}" -gt 0 ]; then
  # Keep package scripts from starting supervisord or runsvdir as services.
  policy=/usr/sbin/policy-rc.d
  made_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=true
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ "$made_policy" = true ]; then
    rm -f "$policy"
  fi
fi

pip_need=()
command -v kubernetes-validate >/dev/null 2>&1 || pip_need+=(kubernetes-validate)
command -v check-jsonschema >/dev/null 2>&1 || pip_need+=(check-jsonschema)
python3 -c 'import yaml' >/dev/null 2>&1 || pip_need+=(pyyaml)
if [ "${#pip_need[@]}" -gt 0 ]; then
  python3 -m pip install -q --disable-pip-version-check "${pip_need[@]}" 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${pip_need[@]}"
  if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash
  fi
fi
