"""DDPM and DDIM samplers as step tables, reproducing Hugging Face diffusers' schedulers.

Formulas (diffusers 0.39 ``DDPMScheduler`` / ``DDIMScheduler``, as LeRobot 0.6.1 configures them;
Ho et al. 2020, https://arxiv.org/abs/2006.11239; Song et al. 2021, https://arxiv.org/abs/2010.02502):

- betas: ``squaredcos_cap_v2`` (Nichol & Dhariwal 2021): ``min(1 - f((i+1)/T) / f(i/T), 0.999)``,
  ``f(t) = cos((t + 0.008) / 1.008 * pi / 2) ** 2`` in float64, then float32; ``linear`` and
  ``scaled_linear`` from ``beta_start``/``beta_end``. ``alphas_cumprod`` = float32 cumprod.
- timesteps ("leading" spacing, offset 0): ``t_k = (K - 1 - k) * (T // K)``, ``k = 0 .. K-1``.
- predicted clean sample: epsilon ``x0 = (x - sqrt(1 - a_t) eps) / sqrt(a_t)``; sample
  ``x0 = out``, ``eps = (x - sqrt(a_t) x0) / sqrt(1 - a_t)``; ``x0`` clipped to
  ``[-clip_sample_range, clip_sample_range]`` when ``clip_sample``.
- DDIM (eta 0, deterministic): ``x' = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps``, ``a_prev = 1``
  past the last step (``set_alpha_to_one``).
- DDPM ("fixed_small" variance): ``x' = sqrt(a_prev) b_t / (1 - a_t) x0 + sqrt(1 - b_t)
  (1 - a_prev) / (1 - a_t) x + sigma_t z`` with ``b_t = 1 - a_t / a_prev``,
  ``sigma_t^2 = max((1 - a_prev) / (1 - a_t) b_t, 1e-20)`` and fresh Gaussian ``z`` at every
  step but the last (``t = 0``), so DDPM is deterministic only given every step's ``z``.

The per-step coefficients are precomputed with the same float32 operations as diffusers, so a
step is one table lookup (``index_select`` by the step index: one ONNX graph serves every step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

SAMPLERS = ("DDPM", "DDIM")
BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")
PREDICTION_TYPES = ("epsilon", "sample")


def make_betas(
    num_train_timesteps: int,
    beta_schedule: str = "squaredcos_cap_v2",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> Tensor:
    """float32 ``[T]`` betas of a diffusers ``beta_schedule`` (formulas in the module docstring).

    Always on the CPU (tables are computed once, then move with the model), also inside a
    ``torch.device("meta")`` context.
    """
    t = int(num_train_timesteps)
    if beta_schedule == "squaredcos_cap_v2":

        def f(x: float) -> float:
            return math.cos((x + 0.008) / 1.008 * math.pi / 2) ** 2

        return torch.tensor(
            [min(1 - f((i + 1) / t) / f(i / t), 0.999) for i in range(t)], dtype=torch.float32
        )
    if beta_schedule == "linear":
        return torch.linspace(beta_start, beta_end, t, dtype=torch.float32, device="cpu")
    if beta_schedule == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, t, dtype=torch.float32, device="cpu") ** 2
    raise ValueError(f"beta_schedule {beta_schedule!r} is not supported; use one of {BETA_SCHEDULES}")


@dataclass(frozen=True)
class SamplerTables:
    """Per-step float32 tables ``[K]`` (step ``k`` runs at timestep ``timesteps[k]``).

    ``sqrt_a``/``sqrt_1ma``: sqrt(a_t), sqrt(1 - a_t); ``coef_x0``/``coef_x``/``coef_eps``: the
    update ``x' = coef_x0 * x0 + coef_x * x + coef_eps * eps`` (+ ``sigma * z``).
    """

    timesteps: Tensor
    sqrt_a: Tensor
    sqrt_1ma: Tensor
    coef_x0: Tensor
    coef_x: Tensor
    coef_eps: Tensor
    sigma: Tensor


def leading_timesteps(num_train_timesteps: int, num_inference_steps: int) -> Tensor:
    """diffusers' "leading" spacing ``[K]`` int64, largest first; needs ``1 <= K <= T``."""
    t, k = int(num_train_timesteps), int(num_inference_steps)
    if not 1 <= k <= t:
        raise ValueError(
            f"num_inference_steps={k} must be between 1 and num_train_timesteps={t}; "
            "lower num_inference_steps"
        )
    return torch.arange(k - 1, -1, -1, dtype=torch.int64, device="cpu") * (t // k)


def sampler_tables(
    sampler: str,
    num_train_timesteps: int,
    num_inference_steps: int,
    beta_schedule: str = "squaredcos_cap_v2",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> SamplerTables:
    """The step tables of ``sampler`` (``"DDIM"`` or ``"DDPM"``); errors name the bad value.

    Computed on the CPU (also inside a ``torch.device("meta")`` context).
    """
    with torch.device("cpu"):
        return _tables(sampler, num_train_timesteps, num_inference_steps, beta_schedule, beta_start, beta_end)


def _tables(
    sampler: str,
    num_train_timesteps: int,
    num_inference_steps: int,
    beta_schedule: str,
    beta_start: float,
    beta_end: float,
) -> SamplerTables:
    if sampler not in SAMPLERS:
        raise ValueError(f"noise_scheduler_type {sampler!r} is not supported; use one of {SAMPLERS}")
    ab = torch.cumprod(1.0 - make_betas(num_train_timesteps, beta_schedule, beta_start, beta_end), dim=0)
    ts = leading_timesteps(num_train_timesteps, num_inference_steps)
    one = torch.tensor(1.0, device="cpu")
    cols: dict[str, list[Tensor]] = {k: [] for k in ("sqrt_a", "sqrt_1ma", "x0", "x", "eps", "sigma")}
    for k, t in enumerate(ts.tolist()):
        a = ab[t]
        prev = ts[k + 1].item() if k + 1 < len(ts) else -1
        if sampler == "DDIM":  # DDIM's previous step is t - T // K (the same "leading" grid)
            prev = t - int(num_train_timesteps) // int(num_inference_steps)
        a_prev = ab[prev] if prev >= 0 else one
        cols["sqrt_a"].append(a**0.5)
        cols["sqrt_1ma"].append((1 - a) ** 0.5)
        if sampler == "DDIM":
            cols["x0"].append(a_prev**0.5)
            cols["x"].append(torch.tensor(0.0, device="cpu"))
            cols["eps"].append((1 - a_prev) ** 0.5)
            cols["sigma"].append(torch.tensor(0.0, device="cpu"))
        else:
            beta_t = 1 - a / a_prev
            cols["x0"].append((a_prev**0.5 * beta_t) / (1 - a))
            cols["x"].append((a / a_prev) ** 0.5 * (1 - a_prev) / (1 - a))
            cols["eps"].append(torch.tensor(0.0, device="cpu"))
            var = torch.clamp((1 - a_prev) / (1 - a) * beta_t, min=1e-20)
            cols["sigma"].append(var**0.5 if t > 0 else torch.tensor(0.0, device="cpu"))
    st = {k: torch.stack(v).float() for k, v in cols.items()}
    return SamplerTables(ts, st["sqrt_a"], st["sqrt_1ma"], st["x0"], st["x"], st["eps"], st["sigma"])


def predicted_x0_eps(
    model_output: Tensor,
    x: Tensor,
    sqrt_a: Tensor,
    sqrt_1ma: Tensor,
    prediction_type: str,
    clip_sample_range: float | None,
) -> tuple[Tensor, Tensor]:
    """``(x0, eps)`` from the network output; ``x0`` clipped when ``clip_sample_range`` is set.

    ``eps`` is computed from the unclipped ``x0`` (diffusers' ``use_clipped_model_output=False``).
    """
    if prediction_type == "epsilon":
        eps = model_output
        x0 = (x - sqrt_1ma * eps) / sqrt_a
    elif prediction_type == "sample":
        x0 = model_output
        eps = (x - sqrt_a * x0) / sqrt_1ma
    else:
        raise ValueError(
            f"prediction_type {prediction_type!r} is not supported; use one of {PREDICTION_TYPES}"
        )
    if clip_sample_range is not None:
        x0 = x0.clamp(-clip_sample_range, clip_sample_range)
    return x0, eps
