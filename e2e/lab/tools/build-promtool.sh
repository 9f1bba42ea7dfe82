#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and rule unit-test runner) and promql-check (our
# PromQL front-end in tools/promql-check: parse, name the metrics) from the Go module proxy into
# $OUT, cached by version, and copies the Prometheus operator's CRDs from its Go module
# (example/prometheus-operator-crd/) into $CRD_OUT. No release download is reachable here.
#
# Prometheus 3.x publishes its Go module as v0.3XX.Y for release 3.XX.Y; promtool is `go install`ed
# from it, and promql-check builds in a throwaway module requiring that same version, so both use
# one PromQL parser.
set -euo pipefail

PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-3.16.0}
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-0.85.0}
OUT=${OUT:?set OUT to the directory receiving the binaries}
CRD_OUT=${CRD_OUT:?set CRD_OUT to the directory receiving the Prometheus operator CRDs}
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0
# Module downloads and the build cache live beside the lab's other downloads under ~/.cache.
CACHE_ROOT=${CDC_LAB_CACHE:-$HOME/.cache/cdc-lab}
export GOMODCACHE=$CACHE_ROOT/go/mod GOCACHE=$CACHE_ROOT/go/build
here=$(cd "$(dirname "$0")" && pwd)

major=${PROMETHEUS_VERSION%%.*}
rest=${PROMETHEUS_VERSION#*.}
minor=${rest%%.*}
patch=${rest#*.}
module_version="v0.$((major * 100 + minor)).$patch"
# The checker's source and this recipe are ours and may change: their hash is part of the stamp.
recipe_hash=$(cat "$here/promql-check/main.go" "$0" | sha256sum | cut -c1-12)
stamp="$OUT/.promtool-$PROMETHEUS_VERSION-$recipe_hash"

if [[ -f $stamp ]]; then
  echo "promtool $PROMETHEUS_VERSION already built in $OUT"
else
  mkdir -p "$OUT"
  echo "building promtool $PROMETHEUS_VERSION ($module_version) (first time only: minutes)"
  # Prometheus's own module and go.sum; remove_all_sd leaves out the cloud service-discovery plugins
  # (AWS, Azure, GCE...: most of the build) that only `promtool check service-discovery` would use.
  GOBIN="$OUT" go install -trimpath -tags remove_all_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION \
      -X github.com/prometheus/common/version.Branch=module -X github.com/prometheus/common/version.Revision=$module_version" \
    "github.com/prometheus/prometheus/cmd/promtool@$module_version"
  # promql-check: a wrapper module requiring the same Prometheus module, hence the same parser.
  WORK=$CACHE_ROOT/build/promql-check-$PROMETHEUS_VERSION
  rm -rf "$WORK" && mkdir -p "$WORK"
  cd "$WORK"
  prom_mod=$(go mod download -json "github.com/prometheus/prometheus@$module_version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  printf 'module cdclab/promqlcheck\n\ngo %s\n\nrequire github.com/prometheus/prometheus %s\n' \
    "$(sed -n 's/^go //p' "$prom_mod")" "$module_version" > go.mod
  cp "$here/promql-check/main.go" main.go
  go mod tidy
  echo "go build promql-check"
  go build -trimpath -ldflags "-s -w" -o "$OUT/promql-check" .
  rm -f "$OUT"/.promtool-*
  touch "$stamp"
  "$OUT/promtool" --version | head -1
fi

crd_stamp="$CRD_OUT/.prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
if [[ -f $crd_stamp ]]; then
  echo "prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs already in $CRD_OUT"
else
  mkdir -p "$CRD_OUT"
  dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  cp "$dir"/example/prometheus-operator-crd/*.yaml "$CRD_OUT/"
  chmod u+w "$CRD_OUT"/*.yaml  # the module cache is read-only
  touch "$crd_stamp"
  echo "prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs copied into $CRD_OUT"
fi
