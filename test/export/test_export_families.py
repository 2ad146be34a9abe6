"""Every spine family's tiny config exports (each layout it supports) and passes parity."""

from __future__ import annotations

import pytest
from export_testlib import exported_card

from vla_ros.export import PolicyCard
from vla_ros.export.api import build_model
from vla_ros.export.onnx_export import model_layouts
from vla_ros.spine import VLAS
from vla_ros.spine.config import MODEL_CONFIG_DIR

FAMILIES = VLAS.list()


def test_core_families_are_registered():
    assert {"act", "flow_matching"} <= set(FAMILIES)


def _cases() -> list:
    out = []
    for fam in FAMILIES:
        cfg = MODEL_CONFIG_DIR / f"{fam}_tiny.yaml"
        if not cfg.is_file():
            out.append(
                pytest.param(
                    fam,
                    None,
                    marks=pytest.mark.skip(reason=f"family {fam!r} has no config/models/{fam}_tiny.yaml yet"),
                )
            )
            continue
        model, _, _ = build_model(f"{fam}_tiny", None)
        for layout in model_layouts(model):
            out.append(pytest.param(fam, layout, id=f"{fam}-{layout}"))
    return out


@pytest.mark.parametrize(("family", "layout"), _cases())
def test_family_tiny_exports_with_parity(family, layout):
    card = PolicyCard.load(exported_card(f"{family}_tiny", layout))
    assert card.family == family
    assert card.layout == layout
    assert card.parity["max_abs_err"] <= 1e-4, card.parity
    assert card.parity["onnxruntime"]["ref_max_abs"] > 0  # a non-trivial output was compared
    if layout == "split":
        assert card.export["split"]["num_steps"] >= 1
        assert {"onnx_prefix", "onnx_step"} <= set(card.files)
    else:
        assert "onnx" in card.files


def test_default_layout_is_the_familys():
    for fam, want in (("act", "monolithic"), ("flow_matching", "split")):
        card = PolicyCard.load(exported_card(f"{fam}_tiny", None))
        assert card.layout == want
