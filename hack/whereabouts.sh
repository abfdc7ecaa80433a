#!/usr/bin/env bash
# Builds Whereabouts v0.9.4's CNI binary, for the side-by-side benchmark in test/bench/ipam only.
# Whereabouts is never a dependency of Plexus: it is built in a throwaway module under the cache.
set -euo pipefail

VERSION="${WHEREABOUTS_VERSION:-v0.9.4}"
CACHE="${PLEXUS_CACHE:-$HOME/.cache/plexus}"
SRC="$CACHE/src/whereabouts-$VERSION"
BIN="$CACHE/bin/whereabouts"
STAMP="$CACHE/bin/.whereabouts.version"

if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" && -d "$CACHE/whereabouts/crds" ]]; then
  echo "whereabouts $VERSION already built: $BIN"
  exit 0
fi

mkdir -p "$SRC" "$CACHE/bin"
cd "$SRC"
cat > go.mod <<EOM
module whereaboutsbench

go 1.24
EOM
cat > tools.go <<'EOM'
//go:build tools

package tools

import _ "github.com/k8snetworkplumbingwg/whereabouts/cmd"
EOM
export GONOSUMDB=github.com/k8snetworkplumbingwg GOFLAGS=-mod=mod
go get "github.com/k8snetworkplumbingwg/whereabouts@$VERSION"
go mod tidy
CGO_ENABLED=0 go build -trimpath -o "$BIN" github.com/k8snetworkplumbingwg/whereabouts/cmd
# Its CRDs, for the benchmark's API server.
MODDIR="$(go list -m -f '{{.Dir}}' github.com/k8snetworkplumbingwg/whereabouts)"
mkdir -p "$CACHE/whereabouts/crds"
cp "$MODDIR"/doc/crds/whereabouts.cni.cncf.io_*.yaml "$CACHE/whereabouts/crds/"
chmod -R u+w "$CACHE/whereabouts/crds"
echo "$VERSION" > "$STAMP"
echo "whereabouts $VERSION built: $BIN"
