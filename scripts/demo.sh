#!/usr/bin/env bash
# The main job: builds kvcache, then generates text with the KV cache on and off and shows that
# both give the same tokens, the speed difference, and the cache memory. Needs no download: it
# uses a synthetic model (kvcache synth); the real stories260K model is used too when ../shared
# is next to the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh kvcache_cli
bin=build/bin/kvcache
mkdir -p build/models
model=build/models/tiny-llama-f32.gguf
[ -f "$model" ] || "$bin" synth --preset tiny --type F32 -o "$model"

echo; echo "== generate with the KV cache (synthetic model: random weights, so the text is noise)"
"$bin" generate -m "$model" -p "Once upon a time" -n 200 --temp 0
echo; echo "== the same without the cache (full recomputation every step)"
"$bin" generate -m "$model" -p "Once upon a time" -n 200 --temp 0 --no-kv-cache

stories=../shared/models/stories260K.gguf
if [ -f "$stories" ]; then
  echo; echo "== a real trained model: stories260K"
  "$bin" generate -m "$stories" -p "Once upon a time" -n 252 --temp 0
fi

echo; echo "== cached vs uncached generation time (synthetic tiny model with a 2048-token context)"
"$bin" bench --repeat 2 --table 1,10,100,500
