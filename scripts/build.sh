#!/usr/bin/env bash
# Configures and builds kvcache (Release, -march=native unless KVCACHE_NATIVE=OFF) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} \
  -DKVCACHE_NATIVE=${KVCACHE_NATIVE:-ON} ${CMAKE_EXTRA:-} >/dev/null
ninja -C "$BUILD_DIR" "$@"
