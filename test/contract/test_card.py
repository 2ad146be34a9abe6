"""Policy card: round trip, identity, validation, file integrity."""

from __future__ import annotations

import pytest
import yaml
from support.export_testlib import copy_card, exported_card

from vla_ros.contract.card import CARD_FILE, Normalization, PolicyCard, Stats
from vla_ros.contract.errors import CardError, ModelFileError
from vla_ros.contract.io_spec import IOSpec


def _card(**kw) -> PolicyCard:
    io = IOSpec(
        camera_names=("front",),
        image_size=(8, 8),
        state_dim=2,
        action_dim=2,
        horizon=3,
        dt=0.1,
        action_mode=kw.pop("action_mode", "absolute"),
    )
    base = dict(
        name="p",
        family="act",
        io=io,
        state_joints=["a", "b"],
        action_joints=["a", "b"],
        normalization=Normalization(Stats([0.0, 1.0], [1.0, 2.0]), Stats([0.5, 0.0], [2.0, 1.0])),
        export={"layout": "monolithic", "precision": "fp32", "opset": 17},
    )
    base.update(kw)
    return PolicyCard(**base)


def test_round_trip_equal_and_id_stable(tmp_path):
    card = _card(provenance={"note": "x"}, parity={"max_abs_err": 1e-7})
    card.save(tmp_path)
    loaded = PolicyCard.load(tmp_path)
    assert loaded.to_dict() == card.to_dict()
    assert loaded.policy_id == card.policy_id
    assert loaded.policy_id.startswith("p@") and len(loaded.policy_id) == 2 + 10
    # the card.yaml path itself is accepted too
    assert PolicyCard.load(tmp_path / CARD_FILE).policy_id == card.policy_id


def test_policy_id_follows_stats_and_files(tmp_path):
    a = _card()
    b = _card(normalization=Normalization(Stats([0, 0], [1, 1]), Stats([0, 0], [1, 1])))
    assert a.policy_id != b.policy_id
    (tmp_path / "model.onnx").write_bytes(b"one")
    a.root = tmp_path
    a.add_file("onnx", "model.onnx")
    id1 = a.policy_id
    (tmp_path / "model.onnx").write_bytes(b"two")
    a.add_file("onnx", "model.onnx")
    assert a.policy_id != id1
    # engines are per-device builds and do not change the identity
    (tmp_path / "model.engine").write_bytes(b"engine")
    id2 = a.policy_id
    a.add_file("engine", "model.engine")
    assert a.policy_id == id2


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"state_joints": ["a"]}, "state_joints has 1 names but io says 2"),
        ({"action_joints": ["a", "a"]}, "duplicate"),
        (
            {"normalization": Normalization(Stats([0, 0], [1, 0]), Stats([0, 0], [1, 1]))},
            r"state.std must be > 0",
        ),
        (
            {"normalization": Normalization(Stats([0], [1]), Stats([0, 0], [1, 1]))},
            "normalization.state.mean has 1 values, expected 2",
        ),
        ({"export": {"layout": "diagonal"}}, "export.layout 'diagonal'"),
        ({"export": {"precision": "int3"}}, "export.precision 'int3'"),
        ({"files": {"weights": "w.bin"}}, "unknown roles"),
        (
            {"action_mode": "delta", "action_joints": ["a", "c"], "postprocess": {"delta_to_absolute": True}},
            r"\['c'\] are not",
        ),
    ],
)
def test_validation_names_the_problem(change, match):
    with pytest.raises(CardError, match=match):
        _card(**change).validate()


def test_load_errors(tmp_path):
    with pytest.raises(CardError, match=r"no policy card.*vla-ros export"):
        PolicyCard.load(tmp_path / "nowhere")
    (tmp_path / CARD_FILE).write_text("name: [unclosed")
    with pytest.raises(CardError, match="not valid YAML"):
        PolicyCard.load(tmp_path)
    (tmp_path / CARD_FILE).write_text("name: x\nfamily: act\n")
    with pytest.raises(CardError, match="lacks required keys"):
        PolicyCard.load(tmp_path)
    d = _card().to_dict()
    d["io"]["bogus"] = 1
    (tmp_path / CARD_FILE).write_text(yaml.safe_dump(d))
    with pytest.raises(CardError, match=r"not a valid IOSpec.*bogus"):
        PolicyCard.load(tmp_path)
    d = _card().to_dict()
    d["card_version"] = 99
    (tmp_path / CARD_FILE).write_text(yaml.safe_dump(d))
    with pytest.raises(CardError, match="card_version 99"):
        PolicyCard.load(tmp_path)


def test_hand_edit_is_detected(tmp_path):
    card = _card()
    card.save(tmp_path)
    d = yaml.safe_load((tmp_path / CARD_FILE).read_text())
    d["normalization"]["action"]["mean"] = [9.0, 9.0]
    (tmp_path / CARD_FILE).write_text(yaml.safe_dump(d))
    with pytest.raises(CardError, match="edited by hand"):
        PolicyCard.load(tmp_path)
    del d["policy_id"]  # accepting the edit
    (tmp_path / CARD_FILE).write_text(yaml.safe_dump(d))
    assert PolicyCard.load(tmp_path).normalization.action.mean == [9.0, 9.0]


def test_missing_and_corrupt_model_files(tmp_path):
    card_dir = copy_card(exported_card("act_tiny"), tmp_path / "card")
    card = PolicyCard.load(card_dir)
    assert card.path("onnx").is_file()
    with pytest.raises(CardError, match="no 'engine' file"):
        card.path("engine")
    onnx = card_dir / card.files["onnx"]
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelFileError, match="corrupt or was replaced: sha256"):
        card.path("onnx")
    onnx.unlink()
    with pytest.raises(ModelFileError, match="is missing; re-export"):
        card.path("onnx")


def test_exported_card_contents():
    card = PolicyCard.load(exported_card("act_tiny"))
    assert card.family == "act"
    assert card.layout == "monolithic"
    assert card.export["opset"] >= 17
    assert card.parity["max_abs_err"] <= card.parity["bound"] == 1e-4
    assert card.provenance["checkpoint"] is None
    assert "torch" in card.provenance["versions"]
    assert len(card.state_joints) == card.io.state_dim
    assert card.model_config["type"] == "act"
    assert set(card.hashes) == set(card.files.values())
