#!/usr/bin/env bash
# One command installs everything: system packages (LibreOffice, CJK fonts, Chromium), a virtual
# environment in .venv and this package with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh || echo "system packages: continuing without some"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[dev]"
echo "installed: . .venv/bin/activate; then huibian run"
