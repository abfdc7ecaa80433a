#!/usr/bin/env bash
# Installs the Debian packages Plexus's tests and demo need, once (apt-get update first).
set -euo pipefail
# containerd (with ctr), runc and busybox-static (the pause and test images) run the local
# cluster's nodes (test/cluster); util-linux gives nsenter and unshare.
pkgs=(iproute2 iptables containerd runc busybox-static util-linux)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
