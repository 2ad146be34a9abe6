"""Per-graph stage timing (split per-step latency) and the dual-rate hierarchical runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from support.export_testlib import copy_card, exported_card

from vla_ros.contract.errors import CardError
from vla_ros.export import PolicyCard, export_policy
from vla_ros.export.api import build_model
from vla_ros.runtime import Observation, load_runtime
from vla_ros.runtime.base import synthetic_observation
from vla_ros.runtime.bench import bench_card, format_table
from vla_ros.runtime.torch_backend import build_model_from_card

MS = 1_000_000  # ns


# ---------------------------------------------------------------------- split: prefix / step stages
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_split_layout_times_prefix_and_each_step(backend):
    card = PolicyCard.load(exported_card("flow_matching_tiny", "split"))
    steps = int(card.export["split"]["num_steps"])
    assert steps >= 2
    rt = load_runtime(card, backend, threads=1)
    rt.warmup(1)
    assert rt.stats()["step"] == {"count": 0}  # warm-up is forgotten
    obs = synthetic_observation(card)
    for _ in range(3):
        rt.infer(obs)
    st = rt.stats()
    assert st["layout"] == "split"
    assert st["model"]["count"] == 3
    assert st["prefix"]["count"] == 3  # once per infer
    assert st["step"]["count"] == 3 * steps  # every step of the loop, separately
    for stage in ("prefix", "step"):
        assert 0 < st[stage]["p50_ms"] <= st[stage]["p99_ms"] <= st[stage]["max_ms"]
    assert "slow" not in st and "fast" not in st


def test_monolithic_has_no_graph_stages():
    card = PolicyCard.load(exported_card("act_tiny"))
    rt = load_runtime(card, "onnxruntime", threads=1)
    rt.infer(synthetic_observation(card))
    st = rt.stats()
    assert st["model"]["count"] == 1
    assert not {"prefix", "step", "slow", "fast"} & set(st)


def test_bench_reports_split_per_step_latency():
    card = PolicyCard.load(exported_card("flow_matching_tiny", "split"))
    steps = int(card.export["split"]["num_steps"])
    report = bench_card(card, ["torch", "onnxruntime"], iters=3, warmup=1)
    for r in report["results"]:
        assert r["stages"]["prefix"]["count"] == 3
        assert r["stages"]["step"]["count"] == 3 * steps
    ort = report["results"][1]["stages"]["step"]
    assert ort["speedup_vs_torch"] > 0
    table = format_table(report)
    assert "split per-step latency" in table
    step_rows = [ln for ln in table.splitlines() if ln.split()[:2] == ["onnxruntime", "step"]]
    assert len(step_rows) == 1 and f"{float(steps):.2f}" in step_rows[0]  # steps per infer


# ---------------------------------------------------------------------- dual: two graphs, two rates
def _dual_card() -> PolicyCard:
    return PolicyCard.load(exported_card("hierarchical_tiny", "dual"))


def _observations(card: PolicyCard, n: int, period_ns: int, seed: int = 0) -> list[Observation]:
    """``n`` different observations stamped every ``period_ns`` from 1 s on."""
    rng = np.random.default_rng(seed)
    h, w = card.io.image_size
    return [
        Observation(
            images={c: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for c in card.io.camera_names},
            state=rng.normal(size=card.io.state_dim),
            instruction="pick up the red cube",
            stamp_ns=1_000 * MS + i * period_ns,
        )
        for i in range(n)
    ]


def _torch_feeds(rt, obs: Observation) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in rt.pre(obs).items()}


def card_post(card: PolicyCard):
    from vla_ros.runtime.processing import Postprocessor

    return Postprocessor(card)


def test_dual_export_writes_two_graphs_with_parity():
    card = _dual_card()
    assert card.layout == "dual"
    assert {"onnx_slow", "onnx_fast"} <= set(card.files)
    dual = card.export["dual"]
    assert dual["slow_hz"] == card.io.extra["slow_hz"] == 8.0
    assert dual["fast_hz"] == 50.0
    assert dual["slow_outputs"] == ["latent"] and dual["fast_inputs"][0] == "latent"
    per = card.parity["onnxruntime"]["per_output"]
    assert max(per["slow"], per["fast"], per["actions"]) <= 1e-4
    assert card.parity["onnxruntime"]["ref_max_abs"] > 0


def test_dual_rate_is_part_of_the_policy_id(tmp_path):
    card_dir = copy_card(exported_card("hierarchical_tiny", "dual"), tmp_path / "c")
    raw = yaml.safe_load((card_dir / "card.yaml").read_text())
    raw["export"]["dual"]["slow_hz"] = 2.0
    (card_dir / "card.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CardError, match="edited by hand"):
        PolicyCard.load(card_dir)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_slow_graph_runs_at_its_rate_on_observation_stamps(backend):
    card = _dual_card()
    model = build_model_from_card(card)
    rt = load_runtime(card, backend, threads=1)
    rt.warmup(1)
    # 20 observations at the fast rate (50 Hz, 20 ms apart); slow_hz = 8 -> period 125 ms:
    # the slow graph runs at 0 ms, then at the first stamp >= 125 ms later (140 ms, 280 ms)
    obs_seq = _observations(card, 20, 20 * MS)
    fresh_at = {0, 7, 14}
    post = card_post(card)
    latent_obs = None
    for i, obs in enumerate(obs_seq):
        got = rt.infer(obs)
        with torch.no_grad():
            t = _torch_feeds(rt, obs)
            if i in fresh_at:
                latent_obs = t
                want = post(model.predict_action(t).numpy(), obs.state)
                assert np.allclose(got, want, atol=1e-4), i  # fresh latent: equals predict_action
            else:
                want = post(model.export_fast(model.export_slow(latent_obs), t).numpy(), obs.state)
                assert np.allclose(got, want, atol=1e-4), i  # the cached latent, the newest obs
                fresh = post(model.predict_action(t).numpy(), obs.state)
                assert not np.allclose(got, fresh, atol=1e-4), i  # ... which really is older
    st = rt.stats()
    assert st["slow"]["count"] == len(fresh_at)
    assert st["fast"]["count"] == st["model"]["count"] == 20
    assert st["latent_age_ms"] == pytest.approx(100.0)  # obs 19 (380 ms) reads obs 14's latent


def test_slow_graph_reruns_when_its_latent_must_not_be_reused():
    card = _dual_card()
    rt = load_runtime(card, "onnxruntime", threads=1)
    a, b, c = _observations(card, 3, 10 * MS)

    def slow_runs() -> int:
        return rt.stats()["slow"]["count"]

    rt.infer(a)
    rt.infer(b)
    assert slow_runs() == 1  # 10 ms later: reused
    rt.infer(Observation(b.images, b.state, instruction="open the drawer", stamp_ns=c.stamp_ns))
    assert slow_runs() == 2  # a new instruction needs a new latent
    rt.infer(a)
    assert slow_runs() == 3  # time went backwards (a replay restarted)
    rt.reset()
    rt.infer(a)
    assert slow_runs() == 4  # reset(): new episode
    unstamped = Observation(a.images, a.state, a.instruction, stamp_ns=0)
    rt.infer(unstamped)
    rt.infer(unstamped)
    assert slow_runs() == 6  # no stamp: no rate to keep, the slow graph runs every time
    rt.infer(Observation(a.images, a.state, a.instruction, stamp_ns=5 * MS))
    assert slow_runs() == 7  # a latent from an unstamped observation is never reused


def test_dual_replay_is_deterministic_and_backends_agree():
    card = _dual_card()
    seq = _observations(card, 12, 20 * MS, seed=4)
    runs = []
    for backend in ("onnxruntime", "onnxruntime", "torch"):
        rt = load_runtime(card, backend, threads=1)
        runs.append(np.stack([rt.infer(o) for o in seq]))
        assert rt.stats()["slow"]["count"] == 2  # 0 ms and 140 ms
    assert np.array_equal(runs[0], runs[1])
    assert np.allclose(runs[0], runs[2], atol=1e-4)


def test_bench_reports_dual_graph_rates():
    card = _dual_card()
    report = bench_card(card, ["onnxruntime"], iters=10, warmup=1)
    (r,) = report["results"]
    # bench stamps advance at fast_hz (20 ms): slow at 0, 140 ms -> 2 of 10 calls
    assert r["stages"]["slow"]["count"] == 2
    assert r["stages"]["fast"]["count"] == 10
    assert "dual-rate graph latency" in format_table(report)


def test_hierarchical_monolithic_stays_available(tmp_path):
    mono = PolicyCard.load(exported_card("hierarchical_tiny", "monolithic"))
    assert mono.layout == "monolithic" and "onnx" in mono.files
    # a config that asks for monolithic gets it without --layout
    _, cfg, _ = build_model("hierarchical_tiny", None)
    cfg["export_layout"] = "monolithic"
    card = export_policy(cfg, tmp_path / "m")
    assert card.layout == "monolithic"
    # the monolithic graph ignores stamps: every call is fresh
    dual = _dual_card()
    rt_m, rt_d = load_runtime(mono, "onnxruntime"), load_runtime(dual, "onnxruntime")
    obs = _observations(dual, 1, 0)[0]
    assert np.allclose(rt_m.infer(obs), rt_d.infer(obs), atol=1e-4)
