"""Registry: registration, errors that say what is wrong, listing, recursive building."""

from __future__ import annotations

import pytest
from torch import nn

from vla_ros.spine import LLM_BACKBONES, VISION_BACKBONES, VLAS, VLM_BACKBONES, Registry


def test_decorator_registers_under_class_name_or_given_name() -> None:
    reg = Registry("thing")

    @reg.register()
    class Alpha:
        def __init__(self, x: int = 1) -> None:
            self.x = x

    @reg.register(name="beta")
    class Beta:
        pass

    @reg.register
    class Gamma:
        pass

    assert reg.list() == ["Alpha", "Gamma", "beta"]
    assert reg.get("Alpha") is Alpha and "beta" in reg and len(reg) == 3
    assert reg.build({"type": "Alpha", "x": 5}).x == 5
    assert reg.build({"type": "Alpha"}, x=7).x == 7  # defaults fill what the config leaves out
    assert reg.build({"type": "Alpha", "x": 2}, x=7).x == 2  # the config wins
    assert isinstance(reg.build({"type": Beta}), Beta)  # a class works as the type too


def test_duplicate_name_names_both_definitions() -> None:
    reg = Registry("thing")

    @reg.register(name="dup")
    class First:
        pass

    with pytest.raises(ValueError) as err:

        @reg.register(name="dup")
        class Second:
            pass

    msg = str(err.value)
    assert "First" in msg and "Second" in msg and "'dup'" in msg
    assert reg.get("dup") is First


def test_unknown_name_lists_entries_and_suggests() -> None:
    with pytest.raises(KeyError) as err:
        VISION_BACKBONES.get("ResNt")
    msg = str(err.value)
    assert "Did you mean 'ResNet'" in msg and "'ViT'" in msg and "vision_backbone" in msg
    with pytest.raises(KeyError, match="flow_matching"):
        VLAS.get("flow_matchin")


def test_list_with_glob_pattern() -> None:
    names = VLAS.list()
    assert names == sorted(names)
    spine = ["act", "diffusion", "flow_matching", "hierarchical", "regression", "tokens"]
    lerobot = ["lerobot_act", "lerobot_diffusion", "lerobot_smolvla"]  # weight-compatible families
    assert set(spine + lerobot) <= set(names)
    assert VLAS.list("*i*") == [n for n in names if "i" in n]
    assert VLAS.list("lerobot_*") == [n for n in names if n.startswith("lerobot_")]
    assert VISION_BACKBONES.list("Vi*") == ["ViT"]


def test_build_errors_name_the_problem() -> None:
    with pytest.raises(TypeError, match="no 'type' key"):
        VISION_BACKBONES.build({"dim": 3})
    with pytest.raises(TypeError, match=r"Accepted keys: \[.*'patch_size'"):
        VISION_BACKBONES.build({"type": "ViT", "patchsize": 8})
    with pytest.raises(TypeError, match="config is None"):
        VISION_BACKBONES.build(None)


def test_recursive_build_uses_child_registries() -> None:
    vlm = VLM_BACKBONES.build(
        {
            "type": "TinyVLM",
            "vision": {"type": "ViT", "image_size": 16, "patch_size": 8, "dim": 16, "depth": 1},
            "projector": {"type": "LinearProjector", "in_dim": 16, "out_dim": 32},
            "llm": {"type": "DecoderLM", "dim": 32, "depth": 1, "heads": 2, "kv_heads": 1, "vocab_size": 300},
        }
    )
    assert isinstance(vlm.vision, nn.Module) and type(vlm.vision).__name__ == "ViT"
    assert type(vlm.llm) is LLM_BACKBONES.get("DecoderLM")
    with pytest.raises(ValueError, match="projector out_dim=16 != llm dim=32"):
        VLM_BACKBONES.build(
            {
                "type": "TinyVLM",
                "vision": {"type": "ViT", "image_size": 16, "patch_size": 8, "dim": 16},
                "projector": {"type": "LinearProjector", "in_dim": 16, "out_dim": 16},
                "llm": {"type": "DecoderLM", "dim": 32, "heads": 2, "kv_heads": 1},
            }
        )


def test_cli_snippet_lists_all_six() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "from vla_ros.spine import VLAS, build_vla; print(VLAS.list())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for fam in ("act", "flow_matching", "diffusion", "tokens", "regression", "hierarchical"):
        assert f"'{fam}'" in out
