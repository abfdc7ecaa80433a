#!/usr/bin/env bash
# Builds the real Kubernetes and etcd binaries the tests run (kube-apiserver, kube-scheduler,
# kube-controller-manager, kubelet, kubectl, etcd) from the Go module proxy into
# $PLEXUS_CACHE/bin. No release download is needed: k8s.io/kubernetes is required by a
# throwaway module whose replace lines pin every staging module to its published v0.x tag.
# Each binary is stamped with its version, so a second run only checks the stamps.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.33.13}
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
CACHE=${PLEXUS_CACHE:-$HOME/.cache/plexus}
BIN=$CACHE/bin
K8S_BINS=(kube-apiserver kube-scheduler kube-controller-manager kubelet kubectl)

mkdir -p "$BIN"
stamped() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }

missing=()
for b in "${K8S_BINS[@]}"; do stamped "$b" "$K8S_VERSION" || missing+=("$b"); done

if [ ${#missing[@]} -gt 0 ]; then
  work=$CACHE/src/kubernetes-$K8S_VERSION
  mkdir -p "$work"
  if [ ! -f "$work/.tidy" ]; then
    echo "test-bins: preparing a module for k8s.io/kubernetes $K8S_VERSION in $work"
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    staging=${K8S_VERSION/v1./v0.}
    {
      echo "module plexus.local/k8s-test-bins"
      grep -E '^(go|godebug) ' "$gomod"
      echo "require k8s.io/kubernetes $K8S_VERSION"
      # Every staging module the kubernetes go.mod replaces with ./staging/... is published as v0.x.
      grep -E '=> \./staging/src/' "$gomod" | awk '{print $1}' | sort -u |
        grep -vE 'k8s.io/(sample-cli-plugin|sample-controller)$' |
        while read -r m; do echo "replace $m => $m $staging"; done
    } > "$work/go.mod"
    {
      echo "//go:build tools"
      echo "package tools"
      echo "import ("
      for b in "${K8S_BINS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
      echo ")"
    } > "$work/tools.go"
    (cd "$work" && go mod tidy)
    touch "$work/.tidy"
  fi
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  pkgs=()
  for b in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  echo "test-bins: building ${missing[*]} $K8S_VERSION (several minutes on a cold cache)"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$BIN/" "${pkgs[@]}")
  for b in "${missing[@]}"; do echo "$K8S_VERSION" > "$BIN/.$b.version"; done
fi

if ! stamped etcd "$ETCD_VERSION"; then
  work=$CACHE/src/etcd-$ETCD_VERSION
  mkdir -p "$work"
  if [ ! -f "$work/.tidy" ]; then
    echo "test-bins: preparing a module for etcd $ETCD_VERSION"
    cat > "$work/go.mod" <<MOD
module plexus.local/etcd-test-bin

go 1.23

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
    printf '//go:build tools\npackage tools\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$work/tools.go"
    (cd "$work" && go mod tidy)
    touch "$work/.tidy"
  fi
  echo "test-bins: building etcd $ETCD_VERSION"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  echo "$ETCD_VERSION" > "$BIN/.etcd.version"
fi

echo "test-bins: $BIN has kube-apiserver kube-scheduler kube-controller-manager kubelet kubectl ($K8S_VERSION) and etcd ($ETCD_VERSION)"
