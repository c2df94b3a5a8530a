#!/usr/bin/env bash
# Installs the Debian packages kvcache needs to build and test, only when some are missing.
set -euo pipefail
pkgs=(cmake ninja-build g++ clang libclang-rt-14-dev libgtest-dev libgmock-dev libbenchmark-dev
      libcli11-dev nlohmann-json3-dev libcpp-httplib-dev pkg-config libxxhash-dev libzstd-dev python3 chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The end-to-end tests drive the server with real clients (the official OpenAI Node client, and
# Debian chromium through playwright-core); their exact versions are pinned in tests/js.
if command -v npm >/dev/null && [ ! -d "$(dirname "$0")/../tests/js/node_modules/openai" -o \
     ! -d "$(dirname "$0")/../tests/js/node_modules/playwright-core" ]; then
  echo "install-deps: npm ci in tests/js"
  (cd "$(dirname "$0")/../tests/js" && npm ci --no-audit --no-fund --loglevel=error)
fi
