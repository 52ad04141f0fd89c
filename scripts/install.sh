#!/usr/bin/env bash
# Creates .venv and installs sonorad with everything it needs, on a fresh machine with only Python >= 3.11.
# Idempotent: a second run only checks what is there. Set SONORAD_VENV to use another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SONORAD_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
stamp="$VENV/.sonorad-installed"
want="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "sonorad: installing into $VENV (first run takes a few minutes)" >&2
"${PIP[@]}" install --upgrade pip
# PyRadiomics 3.0.1 is an sdist whose C extensions build against numpy; its build must see the
# environment's numpy, so the build tools come first and the build runs without isolation.
"${PIP[@]}" install "numpy>=1.26" versioneer setuptools wheel
if ! "$VENV/bin/python" -c "import radiomics" 2>/dev/null; then
  "${PIP[@]}" install --no-build-isolation "pyradiomics==3.0.1"
fi
# torch and torchvision must come as a matching pair; these are the newest that install here.
if ! "$VENV/bin/python" -c "import torchvision" 2>/dev/null; then
  "${PIP[@]}" install "torch==2.14.1" "torchvision==0.29.1"
fi
"${PIP[@]}" install -e ".[dev]"
echo "$want" > "$stamp"
