"""`vla-ros eval` and `vla-ros tune` end to end on a real sim bag, and the YAML they write."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from vla_ros.cli import main
from vla_ros.eval.tune import TuneError, check_candidate, parse_grid, score, update_params_text
from vla_ros.executor.params import SPECS as EXECUTOR_SPECS
from vla_ros.util.params import node_section, read_params_file, resolve

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_eval_json_the_bundled_policy_follows_the_demonstration(
    sim_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "m.json"
    png = tmp_path / "plot.png"
    args = [str(sim_bag), "--card", "bundled", "--params", str(CONFIG / "demo.yaml"), "--latency", "5"]
    assert main(["eval", *args, "--json", "--out", str(out), "--plot", str(png)]) == 0
    m = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == m
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert m["policy"]["latency"] == "fixed 5 ms" and m["chunks"]["accepted"] > 150
    assert len(m["chunks"]["mae_by_step"]) == 10  # the card's horizon
    # the trained policy reproduces the expert: its command error is a small fraction of how
    # far the expert moved (a policy that held still would score about that distance)
    from vla_ros.eval.bag import BagSource

    with BagSource(sim_bag) as bag:
        pos = np.array([msg.position for _, _, msg in bag.messages(["/joint_states"])])
    moved = float(np.mean(np.abs(pos - pos[0])))
    assert m["commands"]["mae"] < 0.1 * moved
    assert m["chunks"]["mae"] < 0.1 * moved
    assert "limits from parameters: joint_1[-2.9, 2.9] v<=2" in m["limits"]


def test_eval_text_report_and_bad_input(sim_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(sim_bag), "--card", "bundled", "--latency", "measured"]) == 0
    text = capsys.readouterr().out
    assert "policy " in text and "|command - reference|" in text and "would refuse to arm" in text
    bad = [
        (["--card", "bundled", "-e", "ensemble_coeficient=0.1"], "did you mean 'ensemble_coefficient'"),
        (["--card", "bundled", "-e", "mode=smooth"], "parameter mode='smooth' is not one of"),
        (["--card", "bundled", "-p", "cameras=[front=/nope]"], "no topic '/nope' for the camera 'front'"),
        (["--card", str(tmp_path / "missing")], "cannot load policy card"),
        ([], "no policy card: pass --card"),
        (
            ["--card", "bundled", "--reference", "/camera/front/image_raw"],
            "it must be sensor_msgs/msg/JointState",
        ),
        (["--card", "bundled", "-p", "cameras=[top=/x]"], "camera 'top' is not in the policy card"),
        (["--card", "bundled", "-e", "joint_names=[a,a]"], "joint_names has duplicates"),
        (
            ["--card", "bundled", "-p", "instruction=@home"],
            "-p 'instruction=@home': the value is not valid YAML",
        ),
        (["--card", "bundled", "--start", "60"], "--start 60 s is past the end of the bag"),
        (["--card", "bundled", "--duration", "-1"], "must be >= 0"),
    ]
    for extra, message in bad:
        assert main(["eval", str(sim_bag), *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert main(["eval", str(tmp_path / "none"), "--card", "bundled"]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "lonely.db3"  # a storage file alone, not a bag folder
    junk.write_bytes(b"not sqlite")
    assert main(["eval", str(junk), "--card", "bundled"]) == 2
    assert "cannot read bag" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", str(sim_bag), "--latency", "soon"])
    assert "give 'measured' or milliseconds" in capsys.readouterr().err


def test_eval_write_sim_bag_makes_the_bag_first(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = tmp_path / "fresh"
    assert main(["eval", str(bag), "--write-sim-bag", "--card", "bundled", "--json"]) == 0
    assert (bag / "metadata.yaml").is_file() and json.loads(capsys.readouterr().out)["chunks"]["accepted"] > 0


def test_grid_parsing_and_candidate_checks() -> None:
    grid = parse_grid(["mode=temporal_ensemble,latest", "ensemble_coefficient=0,0.1"])
    assert grid == [
        {"mode": "temporal_ensemble", "ensemble_coefficient": 0.0},
        {"mode": "temporal_ensemble", "ensemble_coefficient": 0.1},
        {"mode": "latest", "ensemble_coefficient": 0.0},
        {"mode": "latest", "ensemble_coefficient": 0.1},
    ]
    with pytest.raises(TuneError, match="cannot tune 'max_velocity': safety limits come from the robot"):
        check_candidate({"max_velocity": [9.0]})
    with pytest.raises(TuneError, match="cannot tune 'dry_run': it does not change the commands"):
        check_candidate({"dry_run": True})
    with pytest.raises(TuneError, match="cannot tune 'gain': it is not an executor parameter"):
        check_candidate({"gain": 1})
    with pytest.raises(TuneError, match=r"ensemble_coefficient=-1.0 must be in \[0, 100\]"):
        parse_grid(["ensemble_coefficient=-1"])
    with pytest.raises(TuneError, match="is not key=v1,v2"):
        parse_grid(["mode"])
    with pytest.raises(TuneError, match="given twice"):
        parse_grid(["mode=latest", "mode=blend"])
    with pytest.raises(TuneError, match="more than 1000"):
        parse_grid(
            ["blend_steps=" + ",".join(map(str, range(40))), "ensemble_coefficient=" + ",".join(["0"] * 30)]
        )


def test_score_objectives() -> None:
    base = {"commands": {"rmse": 0.1, "jerk_rms": 100.0}}
    cand = {"commands": {"rmse": 0.05, "jerk_rms": 300.0}}
    assert score(base, base, "balanced", 0.5) == pytest.approx(1.5)
    assert score(cand, base, "balanced", 0.5) == pytest.approx(0.5 + 1.5)
    assert score(cand, base, "tracking", 0.5) == 0.05 and score(cand, base, "smoothness", 0.5) == 300.0
    assert score({"commands": {"rmse": float("nan"), "jerk_rms": 1.0}}, base, "tracking", 0.5) == float("inf")
    with pytest.raises(TuneError, match="objective 'fast'"):
        score(base, base, "fast", 0.5)


def test_update_params_text_keeps_comments_and_other_sections() -> None:
    text = (CONFIG / "vla.yaml").read_text()
    new = update_params_text(text, "executor_node", {"mode": "blend", "blend_steps": 12, "max_chunks": 8})
    assert re.search(r"^    mode: blend +# temporal_ensemble \| latest \| blend$", new, re.M)
    assert new.count("# SAFETY LIMITS, REQUIRED") == 1
    tmp = new.splitlines()
    assert len(tmp) == len(text.splitlines())  # replaced in place, nothing added
    fresh = update_params_text("", "executor_node", {"mode": "latest", "max_jump": [0.2]})
    assert fresh.strip().endswith("mode: latest\n    max_jump: [0.2]".strip())
    added = update_params_text(
        "executor_node:\n  ros__parameters:\n    mode: latest  # m\n", "executor_node", {"speed_scale": 0.5}
    )
    assert added == "executor_node:\n  ros__parameters:\n    speed_scale: 0.5\n    mode: latest  # m\n"


def test_tune_writes_a_yaml_the_executor_accepts(
    sim_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = CONFIG / "demo.yaml"
    out = tmp_path / "tuned.yaml"
    args = ["tune", str(sim_bag), "--card", "bundled", "--params", str(src), "--latency", "5"]
    grid = ["--grid", "mode=temporal_ensemble,blend", "--grid", "blend_steps=2,30"]
    assert main([*args, *grid, "--write", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["candidates"]) == 5 and sum(c["baseline"] for c in res["candidates"]) == 1
    scores = [c["score"] for c in res["candidates"]]
    assert scores == sorted(scores)
    best = res["candidates"][0]["params"]
    assert best, "the YAML's own settings won; this grid is meant to contain a better one"
    written = node_section(out, "executor_node")
    assert all(written[k] == v for k, v in best.items())
    resolve(EXECUTOR_SPECS, written, source=str(out))  # the node would accept every key
    before, after = read_params_file(src), read_params_file(out)
    assert {k: v for k, v in before.items() if "executor" not in k} == {
        k: v for k, v in after.items() if "executor" not in k
    }
    assert "# the sim's limits" in out.read_text() and out.read_text().startswith("# tuned by `vla-ros tune`")
    # the text table, and refusing to overwrite the source YAML
    assert main([*args, "--top", "3"]) == 0
    table = capsys.readouterr().out
    assert "rank" in table and "baseline" in table
    assert main([*args, "--write", str(src)]) == 2
    assert "would overwrite --params" in capsys.readouterr().err
    assert main([*args, "--write", str(src.parent / ".." / src.parent.name / src.name)]) == 2
    assert "would overwrite --params" in capsys.readouterr().err
    assert not (tmp_path / "tuned.yaml.tmp").exists()
    assert main([*args, "--grid", "max_jump=0.1"]) == 2
    assert "safety limits come from the robot" in capsys.readouterr().err


def test_update_params_text_never_edits_another_section() -> None:
    """A flow-style executor section is left alone: a new block section follows, other nodes intact."""
    text = (
        "/**/executor_node:\n  ros__parameters: {mode: latest}\n"
        "/**/doctor_node:\n  ros__parameters:\n    period_s: 30.0\n    mode: x\n"
    )
    new = update_params_text(text, "executor_node", {"mode": "blend"})
    assert new.startswith(text)  # nothing above changed, including the doctor's own 'mode'
    assert new.endswith("/**/executor_node:\n  ros__parameters:\n    mode: blend\n")


def test_delay_screen_excludes_warm_up_and_refuses_a_delay_as_long_as_the_horizon() -> None:
    from vla_ros.eval.tune_schedule import delay_screen

    ms = 1_000_000
    defaults = {"max_chunk_age_s": 0.0, "time_offset_s": 0.0}
    # a 0.7 s first call (warm-up), then 0.1 + 0.2 s: 3 steps at dt 0.1 s (not 7, not 4)
    screen = delay_screen([700 * ms] + [100 * ms + 200 * ms] * 9, 100 * ms, 3)
    assert (screen.estimate.steps, screen.estimate.latency_ns, screen.estimate.samples) == (3, 300 * ms, 9)
    problems = screen.problems(defaults)
    assert any("not shorter than the execution horizon (3 steps)" in p for p in problems)
    assert delay_screen([700 * ms] + [300 * ms] * 9, 100 * ms, 4).problems(defaults) == []
    assert screen.problems({**defaults, "time_offset_s": 0.1}) == []  # action 0 due 0.1 s later
    assert delay_screen([700 * ms], 100 * ms, 3) is None  # only the warm-up: nothing to judge


def test_tune_discards_settings_the_measured_delay_makes_infeasible(
    sim_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The bundled card: 10 actions at dt 50 ms. A 10 ms maximum chunk age leaves one action."""
    out = tmp_path / "tuned.yaml"
    args = ["tune", str(sim_bag), "--card", "bundled", "--params", str(CONFIG / "demo.yaml")]
    grid = ["--grid", "max_chunk_age_s=0,0.01"]
    assert main([*args, "--latency", "5", *grid, "--write", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    delay = res["delay"]
    assert (delay["dt_ns"], delay["horizon"]) == (50_000_000, 10)
    assert delay["latency_ns"] >= 5_000_000 and delay["steps"] == -(-delay["latency_ns"] // 50_000_000)
    assert [d["params"] for d in res["discarded"]] == [{"max_chunk_age_s": 0.01}]
    assert "not shorter than the execution horizon (1 steps)" in res["discarded"][0]["reasons"][0]
    assert [c["params"] for c in res["candidates"] if not c["baseline"]] == [{"max_chunk_age_s": 0.0}]
    assert node_section(out, "executor_node").get("max_chunk_age_s", 0.0) == 0.0
    # text form says why
    assert main([*args, "--latency", "5", *grid]) == 0
    text = capsys.readouterr().out
    assert "discarded max_chunk_age_s=0.01: the inference delay" in text and "inference delay" in text
    # a latency longer than the chunk (10 x 50 ms): nothing can work, nothing is written
    late = tmp_path / "late.yaml"
    assert main([*args, "--latency", "600", *grid, "--write", str(late)]) == 1
    err = capsys.readouterr().err
    assert "none of the 3 settings can work with the measured inference delay" in err
    assert "nothing written" in err
    assert "every chunk arrives with all its actions in the past" in err
    assert not late.exists()
