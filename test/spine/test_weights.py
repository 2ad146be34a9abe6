"""weights.py: reading files and folders, name mapping, strict reports, partial loads."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from vla_ros.spine import WeightLoadError, load_weights, save_weights
from vla_ros.spine.weights import map_name, read_checkpoint


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)
        self.bn = nn.BatchNorm1d(8)


def _fresh(seed: int) -> Net:
    torch.manual_seed(seed)
    return Net()


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_safetensors_torch_file_and_folder_round_trip(tmp_path) -> None:
    src = _fresh(0)
    save_weights(src, tmp_path / "a.safetensors")
    torch.save(src.state_dict(), tmp_path / "b.pt")
    torch.save({"state_dict": src.state_dict(), "epoch": 3}, tmp_path / "c.ckpt")  # wrapped
    shard = tmp_path / "shards"
    shard.mkdir()
    sd = src.state_dict()
    keys = sorted(sd)
    save_weights({k: sd[k] for k in keys[:3]}, shard / "model-1.safetensors")
    save_weights({k: sd[k] for k in keys[3:]}, shard / "model-2.safetensors")
    for path in ("a.safetensors", "b.pt", "c.ckpt", "shards"):
        dst = _fresh(1)
        report = load_weights(dst, tmp_path / path)
        assert report.ok and _same(src, dst), path


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_torch_file_is_never_unpickled_beyond_tensors(tmp_path) -> None:
    class Evil:
        def __reduce__(self):  # would run code under a plain pickle.load
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"w": Evil()}, f)
    with pytest.raises(ValueError, match="weights-only"):
        read_checkpoint(path)


def test_unknown_suffix_and_missing_file(tmp_path) -> None:
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.npz"):
        read_checkpoint(tmp_path / "w.npz")
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "nope.safetensors")


def test_name_mapping_first_match_wins_and_empty_prefix_rejected() -> None:
    pairs = [("enc.0", "backbone.first"), ("enc", "backbone"), ("head", "")]
    assert map_name("enc.0.weight", pairs) == "backbone.first.weight"
    assert map_name("enc.1.bias", pairs) == "backbone.1.bias"
    assert map_name("head.weight", pairs) == "weight"
    assert map_name("encoder.x", pairs) == "encoder.x"  # prefix must match at a '.' boundary
    with pytest.raises(ValueError, match="empty model prefix"):
        load_weights(_fresh(0), {}, name_mapping={"": "model"})


def test_mapped_checkpoint_loads_back_exactly(tmp_path) -> None:
    src = _fresh(0)
    renamed = {
        k.replace("enc.", "model.encoder.", 1).replace("head.", "policy.", 1): v
        for k, v in src.state_dict().items()
    }
    save_weights(renamed, tmp_path / "r.safetensors")
    dst = _fresh(1)
    with pytest.raises(WeightLoadError):  # without the mapping nothing matches
        load_weights(dst, tmp_path / "r.safetensors")
    assert not _same(src, dst)  # and a failed strict load changed nothing
    report = load_weights(
        dst, tmp_path / "r.safetensors", name_mapping={"enc": "model.encoder", "head": "policy"}
    )
    assert report.ok and _same(src, dst)


def test_strict_report_counts_and_examples() -> None:
    src = _fresh(0).state_dict()
    ckpt = {k: v for k, v in src.items() if not k.startswith("head.")}  # 2 missing
    ckpt["extra.a"] = torch.zeros(1)  # 2 unexpected
    ckpt["extra.b"] = torch.zeros(1)
    ckpt["enc.0.weight"] = torch.zeros(3, 3)  # 1 shape mismatch
    dst = _fresh(1)
    with pytest.raises(WeightLoadError) as err:
        load_weights(dst, ckpt)
    msg = str(err.value)
    assert "missing 2" in msg and "head.weight" in msg
    assert "unexpected 2" in msg and "extra.a" in msg
    assert "shape-mismatched 1" in msg and "enc.0.weight model(8, 4) vs checkpoint(3, 3)" in msg
    rep = err.value.report
    assert len(rep.missing) == 2 and len(rep.unexpected) == 2 and len(rep.mismatched) == 1


def test_partial_load_only_when_asked() -> None:
    src = _fresh(0)
    ckpt = {k: v for k, v in src.state_dict().items() if k.startswith("enc.")}
    dst = _fresh(1)
    head_before = dst.head.weight.clone()
    report = load_weights(dst, ckpt, strict=False)
    assert not report.ok and sorted(report.missing)[0].startswith("bn.")
    assert torch.equal(dst.enc[0].weight, src.enc[0].weight)
    assert torch.equal(dst.head.weight, head_before)
