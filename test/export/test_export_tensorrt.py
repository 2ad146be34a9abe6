"""TensorRT: the engine compatibility rules (pure, run everywhere) and real engine builds
(only where ``tensorrt`` imports and a CUDA GPU is visible; the skip says which is missing)."""

from __future__ import annotations

import numpy as np
import pytest
from support.export_testlib import copy_card, exported_card

from vla_ros.contract.errors import BackendUnavailableError, EngineMismatchError
from vla_ros.export import PolicyCard
from vla_ros.runtime import load_runtime
from vla_ros.runtime.base import synthetic_observation
from vla_ros.runtime.trt_engine import (
    check_engine_compat,
    engine_compat_problems,
    tensorrt_unavailable_reason,
)

ORIN = {"tensorrt_version": "10.3.0", "compute_capability": "8.7", "gpu_name": "Orin"}
TRT_REASON = tensorrt_unavailable_reason()


def _here(trt="10.3.0", cc="8.7", gpu="Orin"):
    return {"tensorrt_version": trt, "compute_capability": cc, "gpu_name": gpu}


def test_same_platform_is_compatible():
    assert engine_compat_problems(ORIN, _here()) == []
    # a version without a build number matches any build of that release ...
    assert engine_compat_problems(ORIN, _here(trt="10.3.0.30")) == []
    # ... but two different builds do not
    built = {**ORIN, "tensorrt_version": "10.3.0.26"}
    assert engine_compat_problems(built, _here(trt="10.3.0.30")) != []


@pytest.mark.parametrize(
    ("built", "here", "match"),
    [
        (ORIN, _here(trt="10.7.0"), "built with TensorRT 10.3.0, this is 10.7.0"),
        (ORIN, _here(cc="8.9", gpu="RTX 4090"), "compute capability 8.7, this GPU is 8.9"),
        (ORIN, _here(trt=None), "TensorRT is not installed here"),
        (ORIN, _here(cc=None, gpu=None), "no CUDA GPU"),
        ({**ORIN, "version_compatible": True}, _here(trt="10.2.0"), "need TensorRT 10.x >= 10.3.0"),
        ({**ORIN, "version_compatible": True}, _here(trt="11.0.0"), "need TensorRT 10.x"),
        ({**ORIN, "hardware_compatibility": "ampere_plus"}, _here(cc="7.5"), ">= 8.0"),
        ({**ORIN, "tensorrt_version": None}, _here(), "records no TensorRT version"),
    ],
)
def test_incompatible_platforms(built, here, match):
    problems = engine_compat_problems(built, here)
    assert any(p for p in problems if __import__("re").search(match, p)), problems


def test_compat_levels_allow_what_they_promise():
    vc = {**ORIN, "version_compatible": True}
    assert engine_compat_problems(vc, _here(trt="10.8.1")) == []
    amp = {**ORIN, "hardware_compatibility": "ampere_plus"}
    assert engine_compat_problems(amp, _here(cc="9.0", gpu="H100")) == []
    same = {**ORIN, "hardware_compatibility": "same_compute_capability"}
    assert engine_compat_problems(same, _here(gpu="another 8.7 GPU")) == []
    assert engine_compat_problems(same, _here(cc="8.6")) != []


def test_mismatch_error_says_built_here_and_rebuild():
    cmd = "vla-ros export cards/pick --backends tensorrt --precision fp16"
    with pytest.raises(EngineMismatchError) as e:
        check_engine_compat(ORIN, _here(trt="10.7.0", cc="8.9", gpu="RTX 4090"), "m.engine", cmd)
    msg = str(e.value)
    assert "built for TensorRT 10.3.0 on Orin (compute capability 8.7)" in msg
    assert "this machine has TensorRT 10.7.0 on RTX 4090 (compute capability 8.9)" in msg
    assert msg.endswith(cmd)


@pytest.mark.skipif(TRT_REASON is None, reason="TensorRT can run here")
def test_tensorrt_backend_unavailable_says_why(tmp_path):
    card = copy_card(exported_card("act_tiny"), tmp_path / "c")
    with pytest.raises(BackendUnavailableError, match=r"tensorrt|CUDA"):
        load_runtime(card, "tensorrt")


@pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT tests need it: {TRT_REASON}")
@pytest.mark.parametrize(("config", "precision"), [("act_tiny", "fp32"), ("flow_matching_tiny", "fp16")])
def test_engine_build_parity_and_runtime(tmp_path, config, precision):
    from vla_ros.export.api import add_engines_to_card

    card_dir = copy_card(exported_card(config), tmp_path / "c")
    card = add_engines_to_card(card_dir, precision=precision)
    assert card.parity["tensorrt"]["max_abs_err"] <= card.parity["tensorrt"]["bound"]
    assert card.provenance["tensorrt"]["compute_capability"]
    assert (card_dir / "timing.cache").is_file()
    card = PolicyCard.load(card_dir)
    obs = synthetic_observation(card)
    noise = np.zeros(card.io.noise_shape, np.float32)
    a = load_runtime(card, "tensorrt").infer(obs, noise=noise)
    b = load_runtime(card, "onnxruntime").infer(obs, noise=noise)
    bound = card.parity["tensorrt"]["bound"] * max(card.normalization.action.std)
    assert np.max(np.abs(a - b)) <= bound
    # an engine record from another platform is refused with the rebuild command
    card.export["tensorrt"]["tensorrt_version"] = "9.0.0"
    with pytest.raises(EngineMismatchError, match="--backends tensorrt"):
        load_runtime(card, "tensorrt")
