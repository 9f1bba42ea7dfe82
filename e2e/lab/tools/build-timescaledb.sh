#!/usr/bin/env bash
# Builds the Apache-licensed TimescaleDB extension from Debian's source package (trixie has
# 2.19; bookworm has none) against the machine's PostgreSQL 15 and installs it there.
# The source and build tree are cached by version; a warm run only re-installs.
set -euo pipefail

TSDB_VERSION=${TSDB_VERSION:-2.19.3}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
CACHE=${CDC_LAB_CACHE:-$HOME/.cache/cdc-lab}/build/timescaledb
libdir=$("$PG_CONFIG" --pkglibdir)

if [[ -f $libdir/timescaledb-$TSDB_VERSION.so ]]; then
  echo "timescaledb $TSDB_VERSION already installed in $libdir"
  exit 0
fi

mkdir -p "$CACHE"
src="$CACHE/timescaledb-$TSDB_VERSION"
if [[ ! -f $src/build/.built ]]; then
  if [[ ! -f $src/CMakeLists.txt ]]; then
    # A private apt configuration, so the machine's own sources list stays untouched.
    apt_dir="$CACHE/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
    echo "deb-src http://deb.debian.org/debian trixie main" > "$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=-"
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives")
    apt-get "${apt_opts[@]}" update -qq
    (cd "$CACHE" && apt-get "${apt_opts[@]}" source --download-only "timescaledb=$TSDB_VERSION-*" \
      || apt-get "${apt_opts[@]}" source --download-only timescaledb)
    tarball=$(ls "$CACHE"/timescaledb_"$TSDB_VERSION"*.orig.tar.* | head -1)
    mkdir -p "$src"
    tar -xf "$tarball" -C "$src" --strip-components=1
  fi
  cd "$src"
  ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DAPACHE_ONLY=1 \
    -DSEND_TELEMETRY_DEFAULT=NO -DPG_CONFIG="$PG_CONFIG" >/dev/null
  make -C build -j"$(nproc)" >/dev/null
  touch build/.built
fi
make -C "$src/build" install >/dev/null
echo "timescaledb $TSDB_VERSION installed into $libdir"
