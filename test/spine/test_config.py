"""Config files: _base_ composition, _delete_, cycles, names."""

from __future__ import annotations

import pytest

from vla_ros.spine import build_vla, load_config, merge_config
from vla_ros.spine.config import MODEL_CONFIG_DIR, resolve_config_path


def test_merge_is_deep_and_delete_replaces() -> None:
    base = {"a": {"x": 1, "y": 2}, "l": [1, 2], "v": {"type": "A", "k": 1}}
    over = {"a": {"y": 3}, "l": [9], "v": {"_delete_": True, "type": "B"}}
    assert merge_config(base, over) == {"a": {"x": 1, "y": 3}, "l": [9], "v": {"type": "B"}}
    assert base["a"]["y"] == 2  # inputs untouched


def test_base_chain_and_cycle(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("type: act\nio: {horizon: 4, dt: 0.1}\ndim: 8\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\nio: {horizon: 6}\n")
    assert load_config(tmp_path / "b.yaml") == {"type": "act", "io": {"horizon": 6, "dt": 0.1}, "dim": 8}
    (tmp_path / "c.yaml").write_text("_base_: d.yaml\n")
    (tmp_path / "d.yaml").write_text("_base_: c.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        load_config(tmp_path / "c.yaml")


def test_small_configs_compose_from_tiny() -> None:
    small = load_config(MODEL_CONFIG_DIR / "act_small.yaml")
    assert small["io"]["image_size"] == [224, 224]
    assert small["io"]["camera_names"] == ["cam_high", "cam_wrist"]  # inherited
    assert small["vision_backbone"]["widths"] == [64, 128, 256, 512]
    assert "_delete_" not in small["vision_backbone"]


def test_names_resolve_and_unknown_lists_available() -> None:
    assert resolve_config_path("act_tiny") == MODEL_CONFIG_DIR / "act_tiny.yaml"
    with pytest.raises(FileNotFoundError, match="act_tiny"):
        resolve_config_path("act_tinny")
    model = build_vla("regression_tiny", {"io": {"horizon": 4}})
    assert model.io_spec().horizon == 4


def test_build_vla_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="config dict or a YAML path"):
        build_vla(42)  # type: ignore[arg-type]
