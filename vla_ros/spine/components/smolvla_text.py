"""SmolVLA's instruction tokenizer: a local ``tokenizer.json`` run with the ``tokenizers`` library.

What LeRobot 0.6.1's SmolVLA preprocessor does (``NewLineTaskProcessorStep`` then
``TokenizerProcessorStep`` with the VLM's ``AutoTokenizer``): the task gets a trailing newline
unless it has one, is tokenized with the tokenizer file's own normalizer / pre-tokenizer /
post-processor, and truncated to ``max_length`` ids (``truncation=True``; the fast tokenizer's
truncation, so special tokens the post-processor adds are kept). vla_ros pads on the right to
``max_length`` with ``-1`` (never a real id), so the model's token mask is ``ids >= 0`` and the
tensor has a static shape; LeRobot pads a batch to its longest text instead. Padding is masked
out of every attention, so both give the same actions.

An instruction cut to ``max_length`` is logged once per distinct instruction (a robot gets the
same instruction at every inference; a new one that is too long is said once too).

On the robot, the card's tokenizer spec ``smolvla:tokenizer.json`` (the file copied into the card
by ``vla-ros export``) is run by :class:`SmolVLASpecTokenizer`, the same code.

Where the tokenizer file comes from at export (:func:`find_tokenizer_file`): an explicit path, the VLM
name as a local folder (absolute, relative to the working directory or to a parent of the
checkpoint folder), then the Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``,
``~/.cache/huggingface/hub``: ``models--<org>--<name>/snapshots/*/tokenizer.json``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vla_ros.contract.errors import VlaRosError
from vla_ros.spine.components.tokenizer_base import TokenizerBase

LOG = logging.getLogger(__name__)
TOKENIZER_FILE = "tokenizer.json"
PAD = -1
#: distinct too-long instructions remembered for the once-per-instruction note
_WARNED_MAX = 256


class TokenizerNotFoundError(VlaRosError, FileNotFoundError):
    """No ``tokenizer.json`` for a VLM name; the message lists every place looked at."""


def hf_cache_dirs() -> list[Path]:
    """The Hugging Face hub cache folders, in the order ``huggingface_hub`` uses them."""
    out = []
    if os.environ.get("HF_HUB_CACHE"):
        out.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        out.append(Path(os.environ["HF_HOME"]) / "hub")
    out.append(Path.home() / ".cache" / "huggingface" / "hub")
    return out


def candidate_dirs(name: str, near: Path | None = None) -> list[Path]:
    """Folders that may hold the files of VLM ``name`` (local paths first, then HF cache snapshots)."""
    cands: list[Path] = []
    p = Path(name).expanduser()
    cands.append(p)
    if not p.is_absolute() and near is not None:
        cands.extend(parent / p for parent in Path(near).resolve().parents)
    if "/" in name and not p.is_absolute():
        repo = "models--" + name.replace("/", "--")
        for cache in hf_cache_dirs():
            snaps = cache / repo / "snapshots"
            cands.extend(sorted(snaps.iterdir()) if snaps.is_dir() else [snaps / "<revision>"])
    return cands


def find_vlm_file(name: str, filename: str, near: Path | None = None, explicit: Path | None = None) -> Path:
    """``filename`` of VLM ``name``; :class:`TokenizerNotFoundError` listing where it looked."""
    looked = []
    if explicit is not None:
        f = Path(explicit)
        f = f / filename if f.is_dir() else f
        if f.is_file():
            return f
        looked.append(f)
    for d in candidate_dirs(name, near):
        f = d / filename
        if f.is_file():
            return f
        looked.append(f)
    where = "\n  ".join(str(x) for x in looked)
    raise TokenizerNotFoundError(
        f"no {filename} for the VLM {name!r}; looked at:\n  {where}\nCopy the VLM's {filename} "
        f"(e.g. from a machine with the Hugging Face cache: huggingface-cli download {name} "
        f"{filename}) and pass its path"
    )


def find_tokenizer_file(name: str, near: Path | None = None, explicit: Path | None = None) -> Path:
    """The ``tokenizer.json`` of VLM ``name`` (see the module docstring for the search order)."""
    return find_vlm_file(name, TOKENIZER_FILE, near, explicit)


def load_tokenizer_pair(path: Path, max_length: int) -> tuple[Any, Any, str]:
    """A ``tokenizer.json`` loaded twice: ``(full, cut, side)``, ``full`` without truncation or
    padding, ``cut`` truncated to ``max_length`` ids on ``side``, the ``truncation_side`` of the
    ``tokenizer_config.json`` beside it (``"right"`` without one), as transformers' fast tokenizer.

    Raises ``ImportError`` without the ``tokenizers`` package, ``ValueError`` for ``max_length < 1``
    or a file that is not a tokenizers JSON file.
    """
    try:
        from tokenizers import Tokenizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the VLA tokenizers need the 'tokenizers' package: pip install tokenizers") from err
    if max_length < 1:
        raise ValueError(f"tokenizer max_length must be >= 1, got {max_length}")
    try:
        full = Tokenizer.from_file(str(path))
    except Exception as e:  # the tokenizers library raises its own Exception type
        raise ValueError(f"{path} is not a tokenizers JSON file ({str(e)[:200]})") from e
    side = "right"
    cfg = path.with_name("tokenizer_config.json")
    if cfg.is_file():
        side = str(json.loads(cfg.read_text()).get("truncation_side", "right"))
    full.no_truncation()
    full.no_padding()
    cut = Tokenizer.from_str(full.to_str())
    cut.enable_truncation(int(max_length), direction=side)
    return full, cut, side


class SmolVLATokenizer:
    """Task strings -> ``int64 [B, max_length]`` ids, right-padded with ``-1`` (see module docstring).

    Raises ``ImportError`` without the ``tokenizers`` package and ``ValueError`` for a file it
    cannot parse. An instruction cut to ``max_length`` is logged once per distinct instruction
    (LeRobot truncates silently; the cut words never reach the policy).
    """

    def __init__(self, path: str | Path, max_length: int) -> None:
        self.path, self.max_length = Path(path), int(max_length)
        self._full, self._tok, self.truncation_side = load_tokenizer_pair(self.path, max_length)
        self.vocab_size = self._tok.get_vocab_size()
        self._warned: set[str] = set()

    @staticmethod
    def task_text(task: str) -> str:
        """The task with LeRobot's trailing newline (``NewLineTaskProcessorStep``)."""
        return task if task.endswith("\n") else task + "\n"

    def ids(self, task: str) -> list[int]:
        """The ids of one task (newline added, truncated), without padding."""
        if not isinstance(task, str):
            raise TypeError(f"a SmolVLA task must be a str, got {type(task).__name__}")
        text = self.task_text(task)
        ids = list(self._tok.encode(text).ids)
        if task not in self._warned and len(self._full.encode(text).ids) > self.max_length:
            if len(self._warned) >= _WARNED_MAX:
                self._warned.clear()
            self._warned.add(task)
            LOG.warning(
                "instruction %r is longer than the tokenizer limit of %d tokens; cut to %d as "
                "LeRobot does (the rest never reaches the policy)",
                task[:80],
                self.max_length,
                self.max_length,
            )
        return ids

    def __call__(self, tasks: str | Sequence[str]) -> Tensor:
        if isinstance(tasks, str):
            tasks = [tasks]
        rows = [self.ids(t) for t in tasks]
        return torch.tensor([r + [PAD] * (self.max_length - len(r)) for r in rows], dtype=torch.long)


class SmolVLASpecTokenizer(TokenizerBase):
    """The ``smolvla:PATH`` tokenizer kind of :func:`vla_ros.spine.components.text.get_tokenizer`.

    ``encode(task, max_len)`` gives the ids :class:`SmolVLATokenizer` gives (LeRobot's newline,
    its truncation to ``max_len``) right-padded with ``-1`` to ``max_len``; one
    :class:`SmolVLATokenizer` per ``max_len``. Raises :class:`TokenizerNotFoundError` naming
    ``path`` when the file does not exist, ``ValueError`` when it is not a tokenizers file.
    """

    name = "smolvla"
    pad_id = PAD
    #: the tokenizer made once per ``max_len`` (a class taking ``(path, max_len)``, with ``vocab_size``)
    per_length: Any = SmolVLATokenizer

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise self.missing(self.path)
        self._by_len: dict[int, Any] = {}
        self.vocab_size = self.tokenizer(1).vocab_size

    @staticmethod
    def missing(path: Path) -> TokenizerNotFoundError:
        """The error for a card whose tokenizer file ``path`` does not exist."""
        return TokenizerNotFoundError(
            f"SmolVLA tokenizer file {str(path)!r} does not exist; a SmolVLA card keeps its "
            "tokenizer.json in the card folder: copy the whole folder, or re-export with "
            "vla-ros export PRETRAINED_MODEL --tokenizer PATH/tokenizer.json"
        )

    def tokenizer(self, max_len: int) -> Any:
        """The :attr:`per_length` tokenizer cutting to ``max_len`` (made once)."""
        tok = self._by_len.get(max_len)
        if tok is None:
            tok = self._by_len[max_len] = self.per_length(self.path, max_len)
        return tok

    def encode(self, text: str, max_len: int) -> list[int]:
        """``max_len`` ids of ``text`` as LeRobot's SmolVLA preprocessor, ``-1`` padded."""
        ids = self.tokenizer(max_len).ids(text)
        return ids + [PAD] * (max_len - len(ids))
