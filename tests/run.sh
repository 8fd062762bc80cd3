#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine (QEMU 7.2 from the
# distribution, Node + the pinned Kaitai compiler, the Python package with its test extras in
# .venv), then runs lint, type checks and the tests. Usage: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v qemu-system-x86_64 >/dev/null || need_apt+=(qemu-system-x86 qemu-utils)
command -v qemu-img >/dev/null || need_apt+=(qemu-utils)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v as >/dev/null || need_apt+=(binutils)
command -v tmux >/dev/null || need_apt+=(tmux)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
qemu-system-x86_64 --version | head -1

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
(cd formats/tools && npm ci --no-audit --no-fund --silent)

echo "== ruff"
.venv/bin/ruff check formats analyzer savevm fixtures tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
