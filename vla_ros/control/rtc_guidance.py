"""Real-time chunking (RTC): the pure math shared by the flow-matching families and runtimes.

Real-time chunking (Black, Galliker, Levine 2025, "Real-Time Execution of Action Chunking Flow
Policies", arXiv 2506.07339) lets a new action chunk continue the actions the executor has
already committed while the chunk was being computed (the first ``d`` steps, ``d`` the
inference delay in control steps). Two ways, both in :mod:`vla_ros.spine.families.flow_matching`:

- **training-time action conditioning** (Black et al. 2025, "Training-Time Action Conditioning
  for Efficient Real-Time Chunking", arXiv 2512.05964): the committed prefix is given to the
  velocity network as clean actions (flow time "clean") and the loss is masked to the rest;
- **inference-time guidance** (guided inpainting, ΠGDM-style, the 2506.07339 algorithm): each
  Euler step adds ``w(t) * (Y - Â)ᵀ diag(W) ∂Â/∂x`` to the velocity, with ``Â`` the model's
  clean-action estimate, ``Y`` the committed actions, ``W`` the soft mask
  (:func:`soft_mask`) and ``w(t)`` the clipped guidance weight (:func:`guidance_weight`).

Time convention here (the project's flow matching): ``x_t = t * noise + (1 - t) * actions``,
``t = 1`` is noise and ``t = 0`` is clean; the paper's ``τ`` is ``1 - t``.
"""

from __future__ import annotations

import math

import numpy as np

#: default maximum guidance weight β of inference-time RTC (configurable per policy:
#: ``rtc: {guidance: β}``); LeRobot 0.6.1's ``RTCConfig.max_guidance_weight`` defaults to 10
DEFAULT_MAX_GUIDANCE = 5.0


def soft_mask(horizon: int, delay: int, overlap_end: int | None = None) -> np.ndarray:
    """The paper's soft mask ``W`` over a chunk of ``horizon`` steps, float32 ``[horizon]``.

    ``W_i = 1`` for ``i < delay`` (committed: frozen), ``W_i = c_i (e^{c_i} - 1) / (e - 1)``
    with ``c_i = (overlap_end - i) / (overlap_end - delay + 1)`` for
    ``delay <= i < overlap_end`` (the previous chunk's not-yet-committed plan: decaying
    guidance), ``W_i = 0`` from ``overlap_end`` on (Black et al. 2025, arXiv 2506.07339,
    Eq. 5; ``overlap_end = H - s`` with ``s`` the execution horizon). ``overlap_end=None``
    (or ``== delay``) gives the hard mask: only the committed steps are guided, which is
    what :attr:`vla_ros.contract.observation.Observation.committed_actions` carries.

    Raises:
        ValueError: ``delay`` outside ``[0, horizon]`` or ``overlap_end`` outside
            ``[delay, horizon]``.
    """
    if not 0 <= delay <= horizon:
        raise ValueError(f"RTC delay {delay} must be in [0, horizon={horizon}] control steps")
    end = delay if overlap_end is None else int(overlap_end)
    if not delay <= end <= horizon:
        raise ValueError(f"RTC overlap_end {end} must be in [delay={delay}, horizon={horizon}]")
    w = np.zeros(horizon, dtype=np.float32)
    w[:delay] = 1.0
    if end > delay:
        i = np.arange(delay, end, dtype=np.float64)
        c = (end - i) / (end - delay + 1)
        w[delay:end] = (c * np.expm1(c) / (math.e - 1.0)).astype(np.float32)
    return w


def guidance_weight(t: float, max_guidance: float = DEFAULT_MAX_GUIDANCE) -> float:
    """Guidance weight of inference-time RTC at flow time ``t`` (1 noise, 0 clean).

    ``min(β, (1 - τ) / (τ r_τ²))`` with ``τ = 1 - t`` and ``r_τ² = (1 - τ)² / (τ² + (1 - τ)²)``
    (Black et al. 2025, arXiv 2506.07339, Eq. 4 and the clipping of Sec. 4.2), which simplifies
    to ``min(β, (t² + (1 - t)²) / (t (1 - t)))``; ``β`` at ``t = 1`` (pure noise) and ``t = 0``.
    The torch graphs compute the same expression (``FlowMatchingVLA``'s guided step).

    Raises:
        ValueError: ``max_guidance`` not > 0 or ``t`` outside ``[0, 1]``.
    """
    if not max_guidance > 0:
        raise ValueError(f"RTC max guidance weight must be > 0, got {max_guidance}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"flow time t must be in [0, 1], got {t}")
    den = t * (1.0 - t)
    if den <= 0.0:
        return float(max_guidance)
    return float(min(max_guidance, (t * t + (1.0 - t) ** 2) / den))


def hard_mask(horizon: int, delay: int) -> np.ndarray:
    """``[horizon]`` float32, 1 for the first ``delay`` steps (the committed prefix), else 0."""
    return soft_mask(horizon, delay)
