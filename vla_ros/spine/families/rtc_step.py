"""The guided Euler step of inference-time real-time chunking, shared by the flow families.

Black, Galliker, Levine 2025, "Real-Time Execution of Action Chunking Flow Policies"
(arXiv 2506.07339), Algorithm 1 (guided inpainting, ΠGDM-style), in the time convention of
the project's and LeRobot's flow matching (``x_t = t noise + (1 - t) actions``, ``t``: 1 -> 0,
``x <- x - v / N``; the paper's ``τ = 1 - t``)::

    Â   = x - t v(x, t)                                  # the clean-action estimate
    g   = ((Y - Â) ⊙ W)ᵀ ∂Â/∂x                           # vector-Jacobian product
    w   = min(β, (t² + (1 - t)²) / (t (1 - t)))          # clipped guidance weight
    x'  = x - v / N + w g / N

The VJP runs through the velocity network with ``torch.func.vjp`` (exact); under
``torch.inference_mode`` the inputs are cloned into normal tensors first. ``make_fx`` traces
this function into plain forward + backward ops, which is how the exported ``step_rtc`` graph
is exact (:mod:`vla_ros.export.rtc_graphs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor


def guided_euler_step(
    velocity: Callable[[Mapping[str, Tensor], Tensor, Tensor], Tensor],
    prefix: Mapping[str, Tensor],
    x: Tensor,
    t: Tensor,
    target: Tensor,
    weights: Tensor,
    max_guidance: Tensor | float,
    num_steps: int,
) -> Tensor:
    """One guided Euler step (see the module docstring).

    Args:
        velocity: ``(prefix, x, t [B]) -> v`` shaped like ``x``.
        prefix: the prefix features ``velocity`` reads (cloned, never modified).
        x: ``[B, H, D]`` the sample at flow time ``t``.
        t: 0-d flow time (1 noise, 0 clean).
        target: ``Y [B, H, D]`` the committed actions in the model's space.
        weights: ``W``, ``[B, H]`` (per step) or ``[B, H, D]`` (per step and dimension), in [0, 1].
        max_guidance: the clip ``β > 0``.
        num_steps: ``N``, the Euler step is ``1 / N``.

    Returns:
        ``x'`` ``[B, H, D]``, detached.
    """
    with torch.inference_mode(False), torch.enable_grad():
        feats = {k: v.clone() for k, v in prefix.items()}
        x0, t0 = x.clone(), t.clone().to(x.dtype)
        y0 = target.to(x.dtype).clone()
        w0 = weights.to(x.dtype).clone()
        w0 = w0[..., None] if w0.dim() == x0.dim() - 1 else w0
        tb = t0.reshape(1).expand(x0.shape[0])

        def denoise(xx: Tensor) -> tuple[Tensor, Tensor]:
            v = velocity(feats, xx, tb)
            return xx - t0 * v, v

        a_hat, vjp_fn, v = torch.func.vjp(denoise, x0, has_aux=True)
        (g,) = vjp_fn((y0 - a_hat) * w0)
        beta = torch.as_tensor(max_guidance, dtype=x0.dtype, device=x0.device)
        weight = torch.minimum((t0 * t0 + (1.0 - t0) ** 2) / (t0 * (1.0 - t0)).clamp_min(1e-12), beta)
        out = x0 - v / num_steps + weight * g / num_steps
    return out.detach()


def check_guidance(value: Any, where: str) -> float:
    """``value`` as a maximum guidance weight β > 0, else ``ValueError`` naming ``where``."""
    beta = float(value)
    if not beta > 0:
        raise ValueError(f"{where}: the maximum guidance weight must be > 0, got {value!r}")
    return beta
