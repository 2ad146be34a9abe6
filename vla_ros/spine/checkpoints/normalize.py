"""LeRobot's per-feature normalization modes, in pure torch (usable by every family).

Formulas as LeRobot 0.6.1 computes them (``lerobot/processor/normalize_processor.py``,
``_NormalizationMixin._apply_transform``), ``eps`` = 1e-8 by default::

    MEAN_STD    normalize (x - mean) / (std + eps)        unnormalize x * std + mean   (no eps)
    MIN_MAX     normalize 2 (x - min) / d - 1             unnormalize (x + 1) / 2 * d + min
                with d = max - min, replaced by eps where it is 0
    QUANTILES   as MIN_MAX with q01 / q99 ((x + 1) * d / 2 + q01 when unnormalizing)
    QUANTILE10  as MIN_MAX with q10 / q90
    IDENTITY    x

Statistics are per dimension: ``[D]`` for a state or an action, ``[3, 1, 1]`` for an image
(channels first; a flat ``[3]`` is reshaped as LeRobot does). Every mode is an affine map per
dimension, so :func:`card_affine` also gives the ``(mean, std)`` pair a policy card's
``(x - mean) / std`` / ``x * std + mean`` reproduces it with.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

NORM_MODES: tuple[str, ...] = ("MEAN_STD", "MIN_MAX", "QUANTILES", "QUANTILE10", "IDENTITY")
#: the two statistics each mode reads (LeRobot's stat names)
MODE_STATS: dict[str, tuple[str, ...]] = {
    "MEAN_STD": ("mean", "std"),
    "MIN_MAX": ("min", "max"),
    "QUANTILES": ("q01", "q99"),
    "QUANTILE10": ("q10", "q90"),
    "IDENTITY": (),
}
DEFAULT_EPS = 1e-8


def check_mode(mode: str, where: str = "normalization mode") -> str:
    """``mode`` if it is one of :data:`NORM_MODES`, else ``ValueError`` naming the known ones."""
    if mode not in MODE_STATS:
        raise ValueError(f"{where} {mode!r} is not one of {list(NORM_MODES)}")
    return mode


class FeatureNormalizer(nn.Module):
    """(Un)normalization of one feature; its two statistics are persistent buffers.

    ``stats`` maps the mode's stat names (:data:`MODE_STATS`) to tensors of ``shape``; without
    ``stats`` the buffers are zeros of ``shape`` (to be filled by a weight load). The buffers are
    named after the statistics (``mean``/``std``, ``min``/``max``, ``q01``/``q99``, ``q10``/``q90``),
    so a state dict reads ``<prefix>.mean``. Raises ``ValueError`` for an unknown mode, a missing
    statistic or a statistic of the wrong shape.
    """

    def __init__(
        self,
        mode: str,
        shape: tuple[int, ...],
        stats: Mapping[str, Tensor] | None = None,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        self.mode = check_mode(mode)
        self.eps = float(eps)
        self.shape = tuple(int(s) for s in shape)
        self.stat_names = MODE_STATS[mode]
        for name in self.stat_names:
            value = torch.zeros(self.shape)
            if stats is not None:
                if name not in stats:
                    raise ValueError(
                        f"{mode} normalization needs the statistic {name!r}; got {sorted(stats)}"
                    )
                value = torch.as_tensor(stats[name], dtype=torch.float32)
                if value.numel() == torch.Size(self.shape).numel():
                    value = value.reshape(self.shape)
                if tuple(value.shape) != self.shape:
                    raise ValueError(
                        f"{mode} statistic {name!r} has shape {tuple(value.shape)}; expected {self.shape}"
                    )
            self.register_buffer(name, value.clone())

    def _pair(self) -> tuple[Tensor, Tensor]:
        a, b = (getattr(self, n) for n in self.stat_names)
        return a, b

    def _denom(self, lo: Tensor, hi: Tensor) -> Tensor:
        d = hi - lo
        return torch.where(d == 0, torch.full_like(d, self.eps), d)

    def normalize(self, x: Tensor) -> Tensor:
        """Raw -> normalized (``x`` broadcasts against the statistics' shape)."""
        if self.mode == "IDENTITY":
            return x
        a, b = self._pair()
        if self.mode == "MEAN_STD":
            return (x - a) / (b + self.eps)
        return 2.0 * (x - a) / self._denom(a, b) - 1.0

    def unnormalize(self, x: Tensor) -> Tensor:
        """Normalized -> raw."""
        if self.mode == "IDENTITY":
            return x
        a, b = self._pair()
        if self.mode == "MEAN_STD":
            return x * b + a
        if self.mode == "MIN_MAX":
            return (x + 1.0) / 2.0 * self._denom(a, b) + a
        return (x + 1.0) * self._denom(a, b) / 2.0 + a

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`normalize`."""
        return self.normalize(x)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, shape={self.shape}, eps={self.eps:g}"


def card_affine(
    mode: str, stats: Mapping[str, Tensor], eps: float = DEFAULT_EPS, inverse: bool = False
) -> tuple[list[float], list[float]]:
    """Per-dimension ``(mean, std)`` with which ``(x - mean) / std`` (``inverse=False``) or
    ``x * std + mean`` (``inverse=True``) equals LeRobot's mode up to float rounding.

    MEAN_STD: ``(mean, std + eps)`` normalizing, ``(mean, std)`` unnormalizing (LeRobot adds eps
    one way only). The range modes: ``(lo + d / 2, d / 2)`` with ``d`` the (eps-guarded) range.
    Statistics are flattened to ``[D]``; computed in float64 from the float32 values.
    """
    check_mode(mode)
    if mode == "IDENTITY":
        raise ValueError("IDENTITY has no statistics; use mean 0 and std 1 of the feature's size")
    lo_name, hi_name = MODE_STATS[mode]
    missing = [n for n in (lo_name, hi_name) if n not in stats]
    if missing:
        raise ValueError(f"{mode} normalization needs the statistics {missing}; got {sorted(stats)}")
    a = torch.as_tensor(stats[lo_name], dtype=torch.float32).reshape(-1)
    b = torch.as_tensor(stats[hi_name], dtype=torch.float32).reshape(-1)
    if mode == "MEAN_STD":
        std = b if inverse else b + torch.tensor(eps, dtype=torch.float32)
        return a.double().tolist(), std.double().tolist()
    d = b - a
    d = torch.where(d == 0, torch.full_like(d, eps), d).double()
    return (a.double() + d / 2).tolist(), (d / 2).tolist()
