#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: nginx, OpenSSH's
# sshd, Glances (with python3-bottle for its REST API), PostgreSQL 15 and
# Chromium. Idempotent: packages already present are not fetched again.
set -euo pipefail

pkgs=(nginx libnginx-mod-stream openssh-server glances python3-bottle postgresql chromium iproute2 sudo ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ci-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# sshd refuses to start without its privilege-separation directory.
mkdir -p /run/sshd
# The distribution starts services on install; the tests run their own
# instances on free ports, so stop the system ones to free 80/5432.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl stop nginx postgresql glances ssh 2>/dev/null || true
fi
echo "ci-deps: ok"
