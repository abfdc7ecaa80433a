#!/usr/bin/env bash
# Builds the containernetworking reference plugins the CNI tests delegate to, once, into
# $PLEXUS_CACHE/cni/bin (stamped with the version).
set -euo pipefail
VERSION=${CNI_PLUGINS_VERSION:-v1.9.1}
CACHE=${PLEXUS_CACHE:-$HOME/.cache/plexus}
OUT=$CACHE/cni/bin
PLUGINS=(main/bridge main/macvlan main/loopback ipam/host-local ipam/static meta/bandwidth meta/portmap meta/tuning)
mkdir -p "$OUT"
STAMP="$VERSION ${PLUGINS[*]}" # a plugin added to the list is built too
if [ "$(cat "$OUT/.version" 2>/dev/null)" = "$STAMP" ]; then exit 0; fi
pkgs=()
for p in "${PLUGINS[@]}"; do
  pkgs+=("github.com/containernetworking/plugins/plugins/$p@$VERSION")
done
GOBIN=$OUT CGO_ENABLED=0 go install "${pkgs[@]}"
echo "$STAMP" > "$OUT/.version"
echo "cni-plugins: $OUT has the reference plugins $VERSION"
