#!/usr/bin/env bash
# Builds helm from the Go module proxy into $OUT, cached by version.
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-3.19.5}
OUT=${OUT:?set OUT to the directory receiving the binary}
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0
# Module downloads and the build cache live beside the lab's other downloads under ~/.cache.
CACHE_ROOT=${CDC_LAB_CACHE:-$HOME/.cache/cdc-lab}
export GOMODCACHE=$CACHE_ROOT/go/mod GOCACHE=$CACHE_ROOT/go/build
if [[ -x $OUT/helm ]]; then
  echo "helm $HELM_VERSION already built in $OUT"
  exit 0
fi
mkdir -p "$OUT"
echo "building helm v$HELM_VERSION (first time only)"
GOBIN="$OUT" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
"$OUT/helm" version --short
