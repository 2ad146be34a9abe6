"""card.delay: the measured inference delay against the executor's execution horizon.

The act_tiny card has a chunk horizon of 8 actions at dt 20 ms.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vla_ros.doctor import cli
from vla_ros.doctor.card_checks import load_card
from vla_ros.doctor.facts import ExecutorSettings, Latency, read_executor_settings
from vla_ros.doctor.result import DoctorContext, Status
from vla_ros.doctor.schedule import check_delay

MS = 1_000_000
CTX = DoctorContext(env={})


def _params(tmp_path: Path, **executor: float) -> Path:
    body = "".join(f"    {k}: {v}\n" for k, v in executor.items())
    p = tmp_path / "vla.yaml"
    other = "/**/policy_node:\n  ros__parameters:\n    rate_hz: 10.0\n"
    p.write_text(f"{other}/**/executor_node:\n  ros__parameters:\n{body}")
    return p


def test_delay_within_the_horizon_passes_and_a_short_max_chunk_age_fails(card_copy, tmp_path: Path) -> None:
    loaded = load_card(card_copy("act"))
    ok = check_delay(CTX, loaded, Latency(0.060, "--latency-ms"))
    assert ok.id == "card.delay" and ok.status is Status.PASS, ok
    assert (ok.details["delay_steps"], ok.details["execution_horizon"]) == (3, 8)
    assert ok.details["latency_ns"] == 60 * MS

    settings = read_executor_settings(_params(tmp_path, max_chunk_age_s=0.04))
    assert settings.max_chunk_age_s == 0.04 and "executor_node" in settings.source
    scoped = tmp_path / "robot1.yaml"
    scoped.write_text("/robot1/executor_node:\n  ros__parameters:\n    time_offset_s: 0.02\n")
    assert read_executor_settings(scoped, "/robot1").time_offset_s == 0.02
    assert read_executor_settings(scoped, "/").time_offset_s == 0.0  # another namespace's section
    bad = check_delay(CTX, loaded, Latency(0.060, "--latency-ms"), settings)
    assert bad.status is Status.FAIL
    assert (bad.details["delay_steps"], bad.details["execution_horizon"]) == (3, 3)
    assert "not shorter than the execution horizon (3 steps)" in bad.message
    assert "max_chunk_age_s from 0.04 to >= 0.06 s" in bad.fix


def test_latency_longer_than_the_chunk_and_the_time_offset(card_copy) -> None:
    loaded = load_card(card_copy("act"))
    late = check_delay(CTX, loaded, Latency(0.200, "--latency-ms"))
    assert late.status is Status.FAIL and late.details["delay_steps"] == 10
    assert "all its actions in the past" in late.message and "chunk horizon > 10 actions" in late.fix
    shifted = check_delay(CTX, loaded, Latency(0.200, "--latency-ms"), ExecutorSettings(time_offset_s=0.15))
    assert shifted.status is Status.PASS and shifted.details["delay_steps"] == 3


def test_live_samples_exclude_warm_up_and_take_the_p95(card_copy) -> None:
    """A 0.7 s first chunk (warm-up) must not size the delay at 35 steps instead of 3."""
    loaded = load_card(card_copy("act"))
    samples = (700 * MS,) + (50 * MS,) * 30
    r = check_delay(CTX, loaded, Latency(0.7, "/vla/action_chunk (p99 of 31 chunks)", samples))
    assert r.status is Status.PASS, r
    assert r.details["latency_ns"] == 50 * MS and r.details["delay_steps"] == 3
    assert "p95 of 30 chunks after warm-up" in r.details["latency_source"]


def test_skips_and_unreadable_params(card_copy, tmp_path: Path) -> None:
    assert check_delay(CTX, None).status is Status.SKIP
    loaded = load_card(card_copy("act"))
    none = check_delay(CTX, loaded, None)
    assert none.status is Status.SKIP and "no measured latency" in none.message
    broken = tmp_path / "broken.yaml"
    broken.write_text("/**/executor_node:\n  ros__parameters:\n    max_chunk_age_s: -1.0\n")
    settings = read_executor_settings(broken)
    assert settings.error and "max_chunk_age_s" in settings.error
    r = check_delay(CTX, loaded, Latency(0.06, "--latency-ms"), settings)
    assert r.status is Status.FAIL and str(broken) in r.message and "--params" in r.fix


def test_cli_flags_an_infeasible_schedule(card_copy, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    card = card_copy("act")
    argv = ["--json", "--no-gpu", "--only", "card", "--card", str(card), "--latency-ms", "60"]
    assert cli.main(argv) == 0
    by_id = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert by_id["card.delay"]["status"] == "PASS" and by_id["card.delay"]["details"]["delay_steps"] == 3
    params = _params(tmp_path, max_chunk_age_s=0.04)
    assert cli.main([*argv, "--params", str(params)]) == 1
    report = json.loads(capsys.readouterr().out)
    delay = {c["id"]: c for c in report["checks"]}["card.delay"]
    assert delay["status"] == "FAIL" and "execution horizon 3 of 8" in delay["message"]
    assert report["options"]["params"] == str(params)
    assert cli.main([*argv, "--params", str(tmp_path / "missing.yaml")]) == 2
    assert "--params" in capsys.readouterr().err


def test_policy_diagnostics_are_read_and_the_reported_delay_counts(card_copy) -> None:
    from vla_ros.doctor.live import LiveObservation, diagnostics_numbers

    statuses = [
        ("/a/policy_node: policy", {"latency_p99_ms": "61.5", "delay_ns": "60000000"}),
        ("/b/policy_node: policy", {"latency_p99_ms": "nan", "delay_ns": "n/a"}),  # no chunks yet
        ("/executor_node: executor", {"rate_hz": "100"}),
    ]
    assert diagnostics_numbers(statuses, "latency_p99_ms") == {"/a/policy_node: policy": 61.5}
    assert diagnostics_numbers(statuses, "delay_ns") == {"/a/policy_node: policy": 60_000_000}
    obs = LiveObservation(1.0, diagnostics_latency_ms={"p": 61.5}, diagnostics_delay_ns={"p": 60_000_000})
    assert obs.inference_latency_s() == (0.0615, "/diagnostics 'p' latency_p99_ms")
    assert obs.policy_delay_ns() == (60_000_000, "/diagnostics 'p' delay_ns")
    loaded = load_card(card_copy("act"))
    # the policy's own estimate wins over the p99 (a slow tail would size the delay at 4 steps)
    r = check_delay(CTX, loaded, Latency(0.0615, "p99"), reported=obs.policy_delay_ns())
    assert r.details["delay_steps"] == 3 and r.details["latency_source"] == "/diagnostics 'p' delay_ns"
