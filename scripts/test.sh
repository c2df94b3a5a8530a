#!/usr/bin/env bash
# Builds kvcache and runs every test: the unit/integration suite (CTest), the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, and a short bounded fuzz run of the file readers.
# Tests that need ../shared (real models, tokenizer vectors) skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== build (Release) and test"
bash scripts/build.sh
(cd build && ctest --output-on-failure -j"$jobs" --timeout 600)

if [ "${KVCACHE_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== build (ASan + UBSan) and test"
  BUILD_DIR=build-asan BUILD_TYPE=RelWithDebInfo \
    CMAKE_EXTRA="-DKVCACHE_SANITIZE=address,undefined -DKVCACHE_BENCH=OFF" bash scripts/build.sh
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs" --timeout 900)
fi

if [ "${KVCACHE_SKIP_FUZZ:-0}" != 1 ] && [ -f scripts/fuzz.sh ]; then
  echo "== bounded fuzz run"
  bash scripts/fuzz.sh "${KVCACHE_FUZZ_SECONDS:-20}"
fi
