#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from the Go module proxy
# (no release downloads are reachable here) into $OUT, cached by version.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every k8s.io/* staging
# module with a path inside its own tree. A throwaway wrapper module requires it and points
# those replaces at the published v0.Y.Z staging modules instead; etcd's server comes from
# the same module graph, so its version is the one this Kubernetes release was tested with.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.36.3}
OUT=${OUT:?set OUT to the directory receiving the binaries}
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0
# Module downloads and the build cache live beside the lab's other downloads under ~/.cache.
CACHE_ROOT=${CDC_LAB_CACHE:-$HOME/.cache/cdc-lab}
export GOMODCACHE=$CACHE_ROOT/go/mod GOCACHE=$CACHE_ROOT/go/build

WORK=$CACHE_ROOT/build/kubernetes-$K8S_VERSION
stamp="$OUT/.kubernetes-$K8S_VERSION"
if [[ -f $stamp ]]; then
  echo "kubernetes $K8S_VERSION already built in $OUT"
  exit 0
fi

mkdir -p "$WORK" "$OUT"
cd "$WORK"
echo "building kubernetes v$K8S_VERSION in $WORK (first time only: several minutes)"

staging_minor="0.${K8S_VERSION#1.}"
k8s_mod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
{
  echo "module cdclab/kubernetes"
  echo
  echo "go $(sed -n 's/^go //p' "$k8s_mod")"
  echo
  echo "require k8s.io/kubernetes v$K8S_VERSION"
  echo
  echo "replace ("
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 v'"$staging_minor"'#p' "$k8s_mod"
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
go mod tidy
etcd_version=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#1.} \
 -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION \
 -X k8s.io/component-base/version.gitTreeState=clean"
for cmd in kube-apiserver kube-controller-manager kubectl; do
  echo "go build $cmd"
  go build -trimpath -ldflags "$ldflags" -o "$OUT/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done
echo "go build etcd $etcd_version"
go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
echo "$etcd_version" > "$OUT/.etcd-version"
touch "$stamp"
echo "built into $OUT"
