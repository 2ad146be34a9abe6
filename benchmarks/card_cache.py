"""What the card benchmarks share: their command line, and exported cards kept for reuse.

Not a benchmark itself (``make bench`` runs ``bench_*.py``); the benchmarks import it from
their own folder.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vla_ros.contract.card import PolicyCard
from vla_ros.export import export_policy

DEFAULT_CONFIGS = ["act_small", "flow_matching_small"]


def config_parser(description: str, *, iters: int, warmup: int = 3) -> argparse.ArgumentParser:
    """``CONFIG ...`` (default :data:`DEFAULT_CONFIGS`), ``--threads`` (2), ``--iters``,
    ``--warmup``, ``--out`` (keep and reuse the exported cards) and ``--json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("configs", nargs="*", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=iters)
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--out", default=None, help="keep (and reuse) exported cards here")
    parser.add_argument("--json", action="store_true")
    return parser


def cards_root(out: str | None, prefix: str) -> Path:
    """``--out``, or a fresh temporary folder named ``prefix...``."""
    return Path(out or tempfile.mkdtemp(prefix=prefix))


def cached_card(root: Path, config: str, tag: str, **export_options: Any) -> PolicyCard:
    """The card of ``config`` in ``root/<config>_<tag>``: the one already there (an earlier run's
    ``--out``), else exported there now with ``export_options`` (:func:`vla_ros.export.export_policy`)."""
    card_dir = root / f"{config}_{tag}"
    if (card_dir / "card.yaml").is_file():
        return PolicyCard.load(card_dir)
    return export_policy(config, card_dir, **export_options)


def config_cards(
    args: argparse.Namespace, prefix: str, tag: str, **export_options: Any
) -> Iterator[PolicyCard]:
    """:func:`cached_card` of each of :func:`config_parser`'s ``args.configs``, one at a time, in
    ``args.out`` or else a fresh folder named ``prefix...``."""
    root = cards_root(args.out, prefix)
    for config in args.configs:
        yield cached_card(root, config, tag, **export_options)
