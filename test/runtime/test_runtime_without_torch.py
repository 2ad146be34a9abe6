"""A robot running the ONNX Runtime backend never imports torch (start-up time, memory, no CUDA init)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "vla_ros" / "sim" / "bundled" / "sim_reach_act"


def test_card_and_onnxruntime_backend_do_not_import_torch():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from vla_ros.runtime import Observation, load_runtime\n"
        f"rt = load_runtime({str(CARD)!r}, backend='onnxruntime')\n"
        "io = rt.card.io\n"
        "h, w = io.image_size\n"
        "obs = Observation(images={c: np.zeros((h, w, 3), np.uint8) for c in io.camera_names},\n"
        "                  state=np.zeros(io.state_dim))\n"
        "a = rt.infer(obs)\n"
        "assert a.shape == (io.horizon, io.action_dim), a.shape\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"torch was imported: {proc.stdout.strip()[:200]}"
