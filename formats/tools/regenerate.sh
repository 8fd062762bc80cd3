#!/usr/bin/env bash
# Regenerates formats/generated/ from formats/*.ksy with the pinned npm kaitai-struct-compiler.
# Usage: formats/tools/regenerate.sh [OUT_DIR]   (default: formats/generated)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/../generated"}
if [ ! -d "$here/node_modules/kaitai-struct-compiler" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --silent)
fi
mkdir -p "$out"
for spec in "$here"/../*.ksy; do
  node "$here/compile.js" "$spec" "$out" formats >/dev/null
done
