#!/usr/bin/env bash
# Installs the Debian packages the lab and the build need, only those that are missing,
# and uv (the Python lock-file installer) from PyPI. Safe to run again: it then does nothing.
set -euo pipefail

packages=(
  postgresql-15 postgresql-server-dev-15  # the relational destinations, and headers to build TimescaleDB
  cmake gcc make libssl-dev dpkg-dev       # TimescaleDB's build
  openjdk-17-jre-headless maven            # Cassandra 5.0 and the resolver of its jars
  openssl                                  # the lab's certificates
  npm                                      # fetches the ClickHouse server (libchdb.so of @chdb/lib-linux-x64-gnu)
  golang-go                                # only if the machine has no Go: builds kube-apiserver, etcd, helm
)
missing=()
for p in "${packages[@]}"; do
  case $p in
    golang-go) command -v go >/dev/null && continue ;;
    openjdk-17-jre-headless) command -v java >/dev/null && continue ;;
    maven) command -v mvn >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's package creates and starts a default cluster on port 5432; the lab runs its own.
if command -v uv >/dev/null; then :; else
  echo "deps: installing uv"
  python3 -m pip install --quiet "uv==0.13.8"
fi
