#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each one for a
# bounded time on a scratch copy of its seed corpus. Fails on any crash, leak, hang or OOM.
#   scripts/fuzz.sh [seconds per target, default 20]
set -euo pipefail
secs="${1:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DKVCACHE_FUZZ=ON \
  -DKVCACHE_TESTS=OFF -DKVCACHE_BENCH=OFF -DKVCACHE_NATIVE=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" gguf_fuzz llama2c_fuzz

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
status=0
for target in gguf llama2c; do
  mkdir -p "$scratch/$target" "$build/artifacts"
  cp "$root/fuzz/corpus/$target/"* "$scratch/$target/"
  dict=()
  [ -f "$root/fuzz/$target.dict" ] && dict=(-dict="$root/fuzz/$target.dict")
  echo "fuzz.sh: running ${target}_fuzz for ${secs}s"
  if ! "$build/fuzz/${target}_fuzz" "$scratch/$target" "${dict[@]}" -max_total_time="$secs" \
      -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/${target}-" 2>"$scratch/$target.log"; then
    tail -n 40 "$scratch/$target.log"
    echo "fuzz.sh: ${target}_fuzz FAILED; reproducer in $build/artifacts/" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb" "$scratch/$target.log" || true
  fi
done
exit $status
