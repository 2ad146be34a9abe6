"""Components: shapes, exact inference folds, KV cache equivalence, tokenizers."""

from __future__ import annotations

import pytest
import torch

from vla_ros.spine import HEADS, LLM_BACKBONES, PROJECTORS, TEXT_ENCODERS, VISION_BACKBONES
from vla_ros.spine.components.text import ByteTokenizer, HashTokenizer, get_tokenizer


def test_vit_and_resnet_token_shapes() -> None:
    vit = VISION_BACKBONES.build(
        {"type": "ViT", "image_size": [32, 48], "patch_size": 8, "dim": 16, "depth": 1, "cls_token": True}
    )
    assert vit(torch.rand(2, 3, 32, 48)).shape == (2, 4 * 6 + 1, 16) and vit.num_tokens == 25
    cnn = VISION_BACKBONES.build(
        {"type": "ResNet", "image_size": 32, "widths": [8, 16], "blocks": [1, 1], "stem_stride": 2}
    )
    assert cnn(torch.rand(2, 3, 32, 32)).shape == (2, cnn.num_tokens, 16) and cnn.num_tokens == 64
    with pytest.raises(ValueError, match="expects images of size"):
        cnn(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="multiple of patch_size"):
        VISION_BACKBONES.build({"type": "ViT", "image_size": 30, "patch_size": 8})


def test_batchnorm_and_pixel_norm_folds_are_exact() -> None:
    cnn = VISION_BACKBONES.build(
        {"type": "ResNet", "image_size": 16, "widths": [8, 16], "blocks": [1, 1], "norm": "batch"}
    )
    cnn.train()
    for _ in range(3):
        cnn(torch.rand(4, 3, 16, 16))  # non-trivial running statistics
    vit = VISION_BACKBONES.build(
        {
            "type": "ViT",
            "image_size": 16,
            "patch_size": 8,
            "dim": 16,
            "pixel_mean": [0.4, 0.5, 0.6],
            "pixel_std": [0.2, 0.3, 0.25],
        }
    )
    x = torch.rand(2, 3, 16, 16)
    for m in (cnn, vit):
        m.eval()
        with torch.no_grad():
            ref = m(x)
            for sub in m.modules():
                if hasattr(sub, "fold_for_inference"):
                    sub.fold_for_inference()
            out = m(x)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert not any(isinstance(s, torch.nn.BatchNorm2d) for s in cnn.modules())


def test_decoder_kv_cache_matches_full_causal_pass() -> None:
    lm = LLM_BACKBONES.build(
        {
            "type": "DecoderLM",
            "dim": 32,
            "depth": 2,
            "heads": 4,
            "kv_heads": 2,
            "vocab_size": 50,
            "lm_head": True,
            "max_len": 32,
        }
    )
    lm.eval()
    tokens = torch.randint(1, 50, (2, 10))
    mask = torch.ones(2, 10)
    mask[1, 3] = 0  # a padded position in the prompt
    with torch.no_grad():
        full, (k, _v) = lm(lm.embed(tokens), key_mask=mask)
        assert k.shape == (2, 2, 2, 10, 8)  # [depth, B, kv_heads, L, head_dim]: GQA-sized cache
        h, cache = lm(lm.embed(tokens[:, :6]), key_mask=mask[:, :6])
        steps = [h]
        for i in range(6, 10):
            h, cache = lm(lm.embed(tokens[:, i : i + 1]), key_mask=mask[:, : i + 1], past_kv=cache)
            steps.append(h)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
    assert lm.logits(full).shape == (2, 10, 50)
    with pytest.raises(ValueError, match="max_len=32"):
        lm(torch.zeros(1, 33, 32))


def test_causal_mask_hides_the_future() -> None:
    lm = LLM_BACKBONES.build({"type": "DecoderLM", "dim": 16, "depth": 1, "heads": 2, "kv_heads": 1})
    x = torch.randn(1, 6, 16)
    y = x.clone()
    y[:, 4:] += 1.0
    with torch.no_grad():
        a, b = lm(x)[0], lm(y)[0]
        c, d = lm(x, causal=False)[0], lm(y, causal=False)[0]
    assert torch.equal(a[:, :4], b[:, :4]) and not torch.equal(a[:, 4:], b[:, 4:])
    assert not torch.allclose(c[:, :4], d[:, :4])


def test_projectors_and_text_encoder() -> None:
    for name in ("LinearProjector", "MLPProjector", "FusedMLPProjector"):
        p = PROJECTORS.build({"type": name, "in_dim": 12, "out_dim": 20})
        assert p(torch.randn(3, 5, 12)).shape == (3, 5, 20) and p(torch.randn(3, 12)).shape == (3, 20)
    enc = TEXT_ENCODERS.build({"type": "TransformerTextEncoder", "dim": 16, "max_len": 8})
    tokens = ByteTokenizer()(["hi", "hello world"], 8)
    feats, mask = enc(tokens)
    assert feats.shape == (2, 8, 16) and mask.tolist()[0] == [1, 1, 1, 1, 0, 0, 0, 0]


def test_tokenizers_need_no_download_and_are_fixed_length() -> None:
    byte = get_tokenizer("byte")
    ids = byte("pick up the cube", 32)
    assert ids.shape == (1, 32) and ids.dtype == torch.int64 and ids.max() < byte.vocab_size
    assert byte.decode(ids[0].tolist()) == "pick up the cube"
    assert byte("x" * 100, 8).shape == (1, 8)  # truncated
    h = get_tokenizer("hash:64")
    assert isinstance(h, HashTokenizer) and h.vocab_size == 67
    assert h("Open the drawer", 8).tolist() == h("open the  drawer", 8).tolist()  # stable, cased
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_tokenizer("sentencepiece")


def test_heads_shapes() -> None:
    unet = HEADS.build(
        {
            "type": "ConditionalUNet1D",
            "action_dim": 6,
            "cond_dim": 10,
            "horizon": 8,
            "down_dims": [16, 32, 64],
        }
    )
    out = unet(torch.randn(2, 8, 6), torch.tensor([3, 50]), torch.randn(2, 10))
    assert out.shape == (2, 8, 6)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*2"):
        HEADS.build({"type": "ConditionalUNet1D", "horizon": 6, "down_dims": [16, 32, 64]})
