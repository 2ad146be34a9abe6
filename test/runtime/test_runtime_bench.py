"""``vla-ros bench``: one run, several backends, speedups against torch eager."""

from __future__ import annotations

import json

from support.export_testlib import exported_card

from vla_ros.cli import main
from vla_ros.export import PolicyCard
from vla_ros.runtime.bench import available_backends, bench_card, format_table


def test_bench_card_reports_every_backend():
    card_dir = exported_card("act_tiny")
    report = bench_card(card_dir, ["torch", "onnxruntime", "tensorrt_x"], iters=4, warmup=1)
    by = {r["backend"]: r for r in report["results"]}
    assert set(by) == {"torch", "onnxruntime", "tensorrt_x"}
    assert "unknown bench backend" in by["tensorrt_x"]["error"]
    for name in ("torch", "onnxruntime"):
        r = by[name]
        lat = r["latency"]
        assert lat["count"] == 4
        assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert r["throughput_hz"] > 0
        assert r["speedup_vs_torch"] > 0
    assert by["torch"]["speedup_vs_torch"] == 1.0
    assert by["onnxruntime"]["info"]["intra_op_threads"] >= 1
    table = format_table(report)
    assert "onnxruntime" in table and "unavailable" in table and "p99 ms" in table


def test_available_backends():
    import torch

    names = available_backends(PolicyCard.load(exported_card("act_tiny")))
    assert names[0] == "torch" and "onnxruntime" in names
    assert ("torch_cudagraph" in names) == torch.cuda.is_available()
    assert "tensorrt" not in names  # the card has no engine


def test_bench_cli_json(capsys):
    rc = main(
        [
            "bench",
            str(exported_card("act_tiny")),
            "--backends",
            "onnxruntime",
            "--iters",
            "3",
            "--warmup",
            "1",
            "--json",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    # torch eager is always measured as the baseline
    assert [r["backend"] for r in report["results"]] == ["torch", "onnxruntime"]
    assert report["results"][1]["latency"]["count"] == 3


def test_bench_cli_bad_card(tmp_path, capsys):
    assert main(["bench", str(tmp_path)]) == 1
    assert "no policy card" in capsys.readouterr().err
