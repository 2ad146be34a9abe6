#!/usr/bin/env bash
# `make lerobot-ref` (first half): the LeRobot reference lane, idempotent.
#
# A Python 3.12 venv at .venv-lerobot (override: LEROBOT_VENV) with the pinned
# requirements/lerobot-ref.txt (lerobot 0.6.1 + its resolved dependencies). vla_ros never imports
# LeRobot; this lane only regenerates the golden fixtures (scripts/lerobot_goldens.py) and runs the
# live parity tests (pytest -m lerobot) and benchmarks/bench_lerobot.py.
#
# A second run with nothing changed skips pip (a stamp file holds the hash of the requirement file).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${LEROBOT_VENV:-$ROOT/.venv-lerobot}
REQ=$ROOT/requirements/lerobot-ref.txt
cd "$ROOT"

say() { printf '[lerobot-ref] %s\n' "$*"; }
die() { printf '[lerobot-ref] ERROR: %s\n' "$1" >&2; [ $# -gt 1 ] && printf '[lerobot-ref]   fix: %s\n' "$2" >&2; exit 1; }

is312() { [ -x "$1" ] && [ "$("$1" -c 'import sys; print(sys.version_info[:2] == (3, 12))' 2>/dev/null)" = True ]; }

PY=${LEROBOT_PYTHON:-}
if [ -z "$PY" ]; then
  for cand in "$HOME/.pyenv/versions/3.12.1/bin/python" "$HOME"/.pyenv/versions/3.12*/bin/python \
              "$(command -v python3.12 || true)"; do
    if [ -n "$cand" ] && is312 "$cand"; then PY=$cand; break; fi
  done
fi
[ -n "$PY" ] && is312 "$PY" || die "no CPython 3.12 found (lerobot 0.5+ needs Python >= 3.12; 0.6.1 is pinned)" \
  "install one (pyenv install 3.12.1, or apt-get install python3.12-venv) or set LEROBOT_PYTHON=/path/to/python3.12"

if [ ! -x "$VENV/bin/python" ] || ! is312 "$VENV/bin/python"; then
  say "creating $VENV with $PY"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || die "$PY cannot create a venv" "install the venv module for Python 3.12"
fi

stamp=$VENV/.requirements.sha256
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c 'import lerobot' 2>/dev/null; then
  say "requirements unchanged; skipping pip"
else
  say "installing $(basename "$REQ") (~5 GB, a few minutes cold)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -r "$REQ" || die "pip install -r $REQ failed" \
    "check network/index access; the pins are the versions that resolved for lerobot[smolvla,pi,diffusion]==0.6.1"
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" -c 'import lerobot, torch, transformers; print("[lerobot-ref] lerobot", lerobot.__version__, "torch", torch.__version__, "transformers", transformers.__version__)'
