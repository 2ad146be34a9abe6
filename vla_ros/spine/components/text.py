"""Tokenizers that need no download, and a small transformer text encoder.

Tokenizers are named by a spec string (``IOSpec.tokenizer``):

- ``"byte"``: UTF-8 bytes, ids 3..258 (0 pad, 1 bos, 2 eos); vocabulary 259.
- ``"hash"`` / ``"hash:N"``: lower-cased words and punctuation hashed (CRC-32, stable across runs
  and machines) into ``N`` buckets (default 4096), plus the same three special ids.
- ``"hf:/path/tokenizer.json"``: a Hugging Face ``tokenizers`` file (when that package is installed).
- ``"smolvla:/path/tokenizer.json"``: LeRobot SmolVLA's task tokenizer on the VLM's tokenizer file
  (newline-terminated task, LeRobot's truncation, padded with ``-1``; see
  :class:`~vla_ros.spine.components.smolvla_text.SmolVLASpecTokenizer`).
- ``"pi0:/path/tokenizer.json"``: LeRobot pi0's task tokenizer on PaliGemma's tokenizer file
  (the SmolVLA steps; :class:`~vla_ros.spine.components.pi_text.Pi0SpecTokenizer`).
- ``"pi05:/path/tokenizer.json"``: LeRobot pi0.5's prompt of the task and the normalized state
  in 256 bins (:class:`~vla_ros.spine.components.pi_text.Pi05SpecTokenizer`); it needs the
  state with every text (``needs_state``: ``encode(text, max_len, state=...)``).

A relative file path in ``hf:`` / ``smolvla:`` / ``pi0:`` / ``pi05:`` specs is taken relative to
``root`` when one is given (a policy card folder holds its tokenizer file and names it
``smolvla:tokenizer.json``). All of them pad on the right to a fixed length (id 0, the LeRobot
kinds -1), so token tensors have static shapes.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from vla_ros.spine.components.layers import Block
from vla_ros.spine.components.tokenizer_base import BOS_ID, EOS_ID, PAD_ID, TokenizerBase
from vla_ros.spine.registry import TEXT_ENCODERS

_NUM_SPECIAL = 3


class ByteTokenizer(TokenizerBase):
    """UTF-8 byte tokenizer: vocabulary 259, no files, no download."""

    name = "byte"
    vocab_size = 256 + _NUM_SPECIAL

    def _ids(self, text: str) -> list[int]:
        return [BOS_ID, *(b + _NUM_SPECIAL for b in text.encode("utf-8")), EOS_ID]

    def decode(self, ids: Sequence[int]) -> str:
        """Inverse of :meth:`encode` (special ids dropped)."""
        raw = bytes(int(i) - _NUM_SPECIAL for i in ids if int(i) >= _NUM_SPECIAL)
        return raw.decode("utf-8", errors="replace")


class HashTokenizer(TokenizerBase):
    """Word-level tokenizer hashing each word into ``buckets`` ids (collisions are accepted)."""

    name = "hash"
    _split = re.compile(r"\w+|[^\w\s]", re.UNICODE)

    def __init__(self, buckets: int = 4096) -> None:
        if buckets < 2:
            raise ValueError(f"hash tokenizer needs >= 2 buckets, got {buckets}")
        self.buckets = buckets
        self.vocab_size = buckets + _NUM_SPECIAL

    def _ids(self, text: str) -> list[int]:
        words = self._split.findall(text.lower())
        ids = [_NUM_SPECIAL + zlib.crc32(w.encode("utf-8")) % self.buckets for w in words]
        return [BOS_ID, *ids, EOS_ID]


class HFTokenizer(TokenizerBase):
    """A Hugging Face ``tokenizers`` JSON file, loaded locally (never downloaded)."""

    name = "hf"

    def __init__(self, path: str) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"tokenizer 'hf:{path}' needs the 'tokenizers' package; `pip install tokenizers` "
                "or use tokenizer 'byte' / 'hash'"
            ) from err
        self._tok = Tokenizer.from_file(str(path))
        self.vocab_size = self._tok.get_vocab_size()
        for pad in ("<pad>", "[PAD]", "<|pad|>"):
            pid = self._tok.token_to_id(pad)
            if pid is not None:
                self.pad_id = pid
                break

    def _ids(self, text: str) -> list[int]:
        return list(self._tok.encode(text).ids)


#: tokenizer kinds whose spec names a file (``KIND:PATH``)
FILE_KINDS = ("hf", "smolvla", "pi0", "pi05")


def tokenizer_file(spec: str, root: str | Path | None = None) -> Path | None:
    """The file a ``hf:`` / ``smolvla:`` / ``pi0:`` / ``pi05:`` spec names (relative paths under
    ``root`` when given); ``None`` for the file-less kinds."""
    kind, _, rest = spec.partition(":")
    if kind not in FILE_KINDS or not rest:
        return None
    path = Path(rest).expanduser()
    return Path(root) / path if root is not None and not path.is_absolute() else path


def get_tokenizer(spec: str, root: str | Path | None = None) -> TokenizerBase:
    """The tokenizer named by ``spec`` (``"byte"``, ``"hash"``, ``"hash:N"``, ``"hf:PATH"``,
    ``"smolvla:PATH"``, ``"pi0:PATH"``, ``"pi05:PATH"``); relative ``PATH`` under ``root`` when
    given.

    Raises ``ValueError`` for an unknown spec or an unreadable file, ``FileNotFoundError``
    (:class:`~vla_ros.spine.components.smolvla_text.TokenizerNotFoundError`) for a missing
    ``smolvla`` / ``pi0`` / ``pi05`` file, ``ImportError`` without the ``tokenizers`` package.
    """
    if spec == "byte":
        return ByteTokenizer()
    if spec == "hash":
        return HashTokenizer()
    if spec.startswith("hash:"):
        return HashTokenizer(int(spec.split(":", 1)[1]))
    path = tokenizer_file(spec, root)
    if spec.startswith("hf:") and path is not None:
        return HFTokenizer(str(path))
    if spec.startswith("smolvla:") and path is not None:
        from vla_ros.spine.components.smolvla_text import SmolVLASpecTokenizer

        return SmolVLASpecTokenizer(path)
    if spec.startswith(("pi0:", "pi05:")) and path is not None:
        from vla_ros.spine.components.pi_text import Pi0SpecTokenizer, Pi05SpecTokenizer

        return Pi0SpecTokenizer(path) if spec.startswith("pi0:") else Pi05SpecTokenizer(path)
    raise ValueError(
        f"unknown tokenizer {spec!r}; use 'byte', 'hash', 'hash:N', 'hf:/path/tokenizer.json', "
        "'smolvla:/path/tokenizer.json', 'pi0:/path/tokenizer.json' or 'pi05:/path/tokenizer.json'"
    )


@TEXT_ENCODERS.register()
class TransformerTextEncoder(nn.Module):
    """Token embedding + learned positions + bidirectional transformer blocks.

    ``forward(tokens [B, L]) -> (features [B, L, dim], mask [B, L] float, 1 = real token)``.
    """

    def __init__(
        self,
        vocab_size: int = ByteTokenizer.vocab_size,
        dim: int = 64,
        depth: int = 1,
        heads: int = 4,
        max_len: int = 64,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.randn(1, max_len, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_hidden=int(dim * mlp_ratio)) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.vocab_size, self.max_len, self.out_dim = vocab_size, max_len, dim

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        if tokens.shape[1] > self.max_len:
            raise ValueError(
                f"text encoder max_len={self.max_len} < token length {tokens.shape[1]}; "
                "raise max_len or lower io.text_max_len"
            )
        mask = (tokens != PAD_ID).to(self.pos.dtype)
        x = self.embed(tokens) + self.pos[:, : tokens.shape[1]]
        additive = ((1.0 - mask) * -1.0e4)[:, None, None, :]
        for blk in self.blocks:
            x = blk(x, mask=additive)[0]
        return self.norm(x), mask
