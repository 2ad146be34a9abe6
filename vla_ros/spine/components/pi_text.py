"""pi0 / pi0.5 prompts and their tokenizer (PaliGemma's ``tokenizer.json`` via ``tokenizers``).

pi0 (LeRobot 0.6.1 ``Pi0NewLineProcessor`` + ``TokenizerProcessorStep``): the task with a trailing
newline, as SmolVLA's (:class:`~vla_ros.spine.components.smolvla_text.SmolVLATokenizer`).

pi0.5 (``Pi05PrepareStateTokenizerProcessorStep``, after openpi's ``PaligemmaTokenizer``): the
prompt ``"Task: {task}, State: {bins};\\nAction: "`` where ``task`` is stripped with ``_`` and
newlines replaced by spaces, and ``bins`` are the normalized (unpadded) state's values cut into
256 bins over [-1, 1]: ``digitize(x, linspace(-1, 1, 257)[:-1]) - 1``, so values below -1 give
``-1`` and values at or above ``1 - 2/256`` give ``255``; no newline is appended.

On the robot a card names its copy of the tokenizer file with the kinds ``pi0:tokenizer.json``
(:class:`Pi0SpecTokenizer`) and ``pi05:tokenizer.json`` (:class:`Pi05SpecTokenizer`) of
:func:`vla_ros.spine.components.text.get_tokenizer`; the pi0.5 kind needs the observation's
normalized state with every instruction (``needs_state``), so the runtime tokenizes once per
observation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vla_ros.spine.components.smolvla_text import (
    SmolVLASpecTokenizer,
    TokenizerNotFoundError,
    load_tokenizer_pair,
)

LOG = logging.getLogger(__name__)
PAD = -1
#: distinct tasks remembered for the once-per-task truncation note (then the memory restarts)
WARNED_MAX = 256

N_STATE_BINS = 256


def state_bins(state: Tensor) -> Tensor:
    """Normalized state ``[B, D]`` -> int64 bins ``[B, D]`` in ``-1 .. 255`` (numpy ``digitize``
    semantics, computed in float64 as numpy does for a float32 array against float64 edges)."""
    edges = torch.linspace(-1.0, 1.0, N_STATE_BINS + 1, dtype=torch.float64)[:-1]
    return torch.bucketize(state.detach().to(torch.float64).cpu(), edges, right=True) - 1


def pi05_prompt(task: str, bins: Sequence[int]) -> str:
    """pi0.5's prompt for one task and its state bins."""
    if not isinstance(task, str):
        raise TypeError(f"a pi0.5 task must be a str, got {type(task).__name__}")
    cleaned = task.strip().replace("_", " ").replace("\n", " ")
    return f"Task: {cleaned}, State: {' '.join(str(int(b)) for b in bins)};\nAction: "


class PromptTokenizer:
    """Ready-made prompts -> ``int64 [B, max_length]`` ids from a ``tokenizer.json`` (the file's own
    normalizer and post-processor, truncated to ``max_length`` on the side its
    ``tokenizer_config.json`` names, right-padded with ``-1``), as LeRobot's
    ``TokenizerProcessorStep``; no newline is added.

    A prompt cut to ``max_length`` is logged once per task (``key``), not per prompt: pi0.5's
    prompts change with the state every observation. Raises ``ValueError`` for a file that is
    not a tokenizers JSON file and ``TypeError`` for a prompt that is not a ``str``.
    """

    def __init__(self, path: str | Path, max_length: int) -> None:
        self.path, self.max_length = Path(path), int(max_length)
        self._full, self._cut, _ = load_tokenizer_pair(self.path, max_length)
        self.vocab_size = self._full.get_vocab_size()
        self._warned: set[str] = set()

    def ids(self, prompt: str, key: str | None = None) -> list[int]:
        """The ids of one prompt, truncated to ``max_length`` (special tokens of the post-processor
        kept, as the fast tokenizer's truncation does), without padding."""
        if not isinstance(prompt, str):
            raise TypeError(f"a prompt must be a str, got {type(prompt).__name__}")
        ids = list(self._full.encode(prompt).ids)
        if len(ids) <= self.max_length:
            return ids
        key = prompt if key is None else key
        if key not in self._warned:
            if len(self._warned) >= WARNED_MAX:
                self._warned.clear()
            self._warned.add(key)
            LOG.warning(
                "pi0.5 prompt for %r is %d tokens, longer than the tokenizer limit of %d; cut to %d as "
                "LeRobot does (the rest, state values included, never reaches the policy)",
                key[:80],
                len(ids),
                self.max_length,
                self.max_length,
            )
        return list(self._cut.encode(prompt).ids)

    def __call__(self, prompts: Sequence[str], keys: Sequence[str] | None = None) -> Tensor:
        keys = list(prompts) if keys is None else list(keys)
        rows = [self.ids(p, k) for p, k in zip(prompts, keys, strict=True)]
        return torch.tensor([r + [PAD] * (self.max_length - len(r)) for r in rows], dtype=torch.long)


def pi05_tokens(tokenizer: PromptTokenizer, tasks: str | Sequence[str], state: Tensor) -> Tensor:
    """Tasks and normalized state ``[B, D]`` -> ids ``[B, max_length]``; ``ValueError`` when the
    counts differ."""
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if state.ndim != 2 or state.shape[0] != len(tasks):
        raise ValueError(
            f"pi0.5 needs one normalized state row per task: {len(tasks)} tasks, state {tuple(state.shape)}"
        )
    bins = state_bins(state).tolist()
    return tokenizer([pi05_prompt(t, b) for t, b in zip(tasks, bins, strict=True)], keys=tasks)


def _missing(kind: str, path: Path) -> TokenizerNotFoundError:
    return TokenizerNotFoundError(
        f"{kind} tokenizer file {str(path)!r} does not exist; a {kind} card keeps PaliGemma's "
        "tokenizer.json in the card folder: copy the whole folder, or re-export with "
        "vla-ros export PRETRAINED_MODEL --tokenizer PATH/tokenizer.json (google/paligemma-3b-pt-224)"
    )


class Pi0SpecTokenizer(SmolVLASpecTokenizer):
    """The ``pi0:PATH`` tokenizer kind: pi0's task tokenizer (LeRobot's newline-terminated task,
    truncated to ``max_len``, ``-1`` padded; the same steps as SmolVLA's, on PaliGemma's file).

    Raises :class:`TokenizerNotFoundError` naming ``path`` when the file does not exist,
    ``ValueError`` when it is not a tokenizers file.
    """

    name = "pi0"

    @staticmethod
    def missing(path: Path) -> TokenizerNotFoundError:
        return _missing("pi0", path)


class Pi05SpecTokenizer(SmolVLASpecTokenizer):
    """The ``pi05:PATH`` tokenizer kind: pi0.5's prompt of the task and the observation's
    normalized state (:func:`pi05_prompt`, 256 bins), tokenized as :class:`PromptTokenizer`
    (truncated to ``max_len`` and said once per task, ``-1`` padded).

    ``encode(task, max_len, state=...)`` needs the normalized, unpadded state ``[state_dim]``
    (the card's normalization applied; LeRobot's QUANTILES by default): ``ValueError`` without
    it, or when it is not finite. Raises :class:`TokenizerNotFoundError` naming ``path`` when
    the file does not exist, ``ValueError`` when it is not a tokenizers file.
    """

    name = "pi05"
    pad_id = PAD
    needs_state = True
    per_length = PromptTokenizer

    @staticmethod
    def missing(path: Path) -> TokenizerNotFoundError:
        return _missing("pi0.5", path)

    def encode(self, text: str, max_len: int, state: Sequence[float] | np.ndarray | None = None) -> list[int]:
        """``max_len`` ids of pi0.5's prompt for task ``text`` and normalized ``state``, ``-1``
        padded."""
        if not isinstance(text, str):
            raise TypeError(f"a pi0.5 task must be a str, got {type(text).__name__}")
        if state is None:
            raise ValueError(
                "pi0.5's prompt carries the discretized state: tokenize each instruction with the "
                "normalized state of the same observation (encode(task, max_len, state=...))"
            )
        s = np.asarray(state, dtype=np.float32).reshape(1, -1)
        if not np.all(np.isfinite(s)):
            raise ValueError(f"pi0.5 prompt state has non-finite values {s[0].tolist()}")
        bins = state_bins(torch.from_numpy(s))[0].tolist()
        ids = self.tokenizer(max_len).ids(pi05_prompt(text, bins), key=text)
        return ids + [PAD] * (max_len - len(ids))


__all__ = [
    "N_STATE_BINS",
    "Pi0SpecTokenizer",
    "Pi05SpecTokenizer",
    "PromptTokenizer",
    "pi05_prompt",
    "pi05_tokens",
    "state_bins",
]
