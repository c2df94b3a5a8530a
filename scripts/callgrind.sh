#!/usr/bin/env bash
# Repeatable instruction counts of a fixed workload (`kvcache bench --callgrind`), for comparing
# commits on a noisy machine. valgrind cannot execute AVX-512, so this builds an AVX2 (x86-64-v3)
# variant in build-cg/; the counts measure that code path.
#   scripts/callgrind.sh [MODEL]     (default: the synthetic `tiny` model)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
command -v valgrind >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo; $sudo apt-get install -y -qq valgrind >/dev/null; }
BUILD_DIR=build-cg CMAKE_EXTRA="-DKVCACHE_ARCH=x86-64-v3 -DKVCACHE_TESTS=OFF -DKVCACHE_BENCH=OFF" \
  bash scripts/build.sh kvcache_cli >/dev/null
model_args=()
[ $# -ge 1 ] && model_args=(-m "$1")
out=$(mktemp)
valgrind --tool=callgrind --callgrind-out-file="$out" build-cg/bin/kvcache bench --callgrind "${model_args[@]}" \
  2>&1 | grep -E "Collected|error" || true
callgrind_annotate "$out" 2>/dev/null | grep -E "PROGRAM TOTALS|^[ 0-9,]+ \(" | head -12
rm -f "$out"
