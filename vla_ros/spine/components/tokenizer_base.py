"""The base every text tokenizer of the spine derives from: fixed-length batching of ids.

Kept apart from :mod:`vla_ros.spine.components.text` (which picks a tokenizer from a card's
spec and imports the LeRobot ones) so that those tokenizers import their base, not the picker.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


class TokenizerBase:
    """Shared fixed-length batching; subclasses implement ``_ids(text)`` and ``vocab_size``."""

    name = "?"
    vocab_size = 0
    pad_id = PAD_ID
    #: whether ``encode`` needs the observation's normalized state (``state=``; pi0.5's prompt)
    needs_state = False

    def _ids(self, text: str) -> list[int]:
        """The token ids of ``text``. Abstract: every tokenizer defines it."""
        raise NotImplementedError(f"{type(self).__name__} defines no _ids(): a tokenizer must")

    def encode(self, text: str, max_len: int) -> list[int]:
        """Ids of ``text`` (with bos/eos where the scheme has them), cut or padded to ``max_len``."""
        if not isinstance(text, str):
            raise TypeError(f"{self.name} tokenizer expects a str, got {type(text).__name__}")
        ids = self._ids(text)[:max_len]
        return ids + [self.pad_id] * (max_len - len(ids))

    def __call__(self, texts: str | Sequence[str], max_len: int) -> Tensor:
        """``int64 [B, max_len]`` for one text or a list of texts."""
        if isinstance(texts, str):
            texts = [texts]
        return torch.tensor([self.encode(t, max_len) for t in texts], dtype=torch.long)
