"""Every spine family's tiny config exports (each layout it supports) and passes parity."""

from __future__ import annotations

import pytest
from support.export_testlib import exported_card, family_cases

from vla_ros.export import PolicyCard
from vla_ros.spine import VLAS

FAMILIES = VLAS.list()


def test_core_families_are_registered():
    assert {"act", "flow_matching"} <= set(FAMILIES)


@pytest.mark.parametrize(("family", "layout"), family_cases())
def test_family_tiny_exports_with_parity(family, layout):
    card = PolicyCard.load(exported_card(f"{family}_tiny", layout))
    assert card.family == family
    assert card.layout == layout
    assert card.parity["max_abs_err"] <= 1e-4, card.parity
    assert card.parity["onnxruntime"]["ref_max_abs"] > 0  # a non-trivial output was compared
    # the gate ran on the trace input and 3 random valid inputs; per graph max_abs and cosine
    assert len(card.parity["onnxruntime"]["inputs"]) == 4
    assert 0.99999 <= card.parity["cosine_min"] <= 1.0
    graphs = card.parity["onnxruntime"]["graphs"]
    assert set(graphs) == set(card.parity["onnxruntime"]["per_output"])
    assert all(g["max_abs"] <= 1e-4 and g["cosine"] >= 0.99999 for g in graphs.values()), graphs
    if layout == "split":
        assert card.export["split"]["num_steps"] >= 1
        assert {"onnx_prefix", "onnx_step"} <= set(card.files)
    elif layout == "dual":
        assert {"onnx_slow", "onnx_fast"} <= set(card.files) and "onnx" not in card.files
        per = card.parity["onnxruntime"]["per_output"]
        assert set(per) == {"slow", "fast", "actions"}  # each graph and end to end
        assert card.export["dual"]["slow_hz"] > 0
    else:
        assert "onnx" in card.files


def test_default_layout_is_the_familys():
    for fam, want in (("act", "monolithic"), ("flow_matching", "split"), ("hierarchical", "dual")):
        card = PolicyCard.load(exported_card(f"{fam}_tiny", None))
        assert card.layout == want
