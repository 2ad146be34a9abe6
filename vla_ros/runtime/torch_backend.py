"""Torch backend: the spine model itself, on CPU or CUDA, optionally captured as CUDA graphs."""

from __future__ import annotations

from typing import Any

import numpy as np

from vla_ros.contract.card import PolicyCard
from vla_ros.contract.errors import BackendUnavailableError, CardError
from vla_ros.runtime.base import RTC_FEEDS, PolicyRuntime, dual_spec, split_spec
from vla_ros.runtime.checkpoint import apply_state_dict, load_state_dict
from vla_ros.runtime.timing import StageTimer

_TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def build_model_from_card(card: PolicyCard) -> Any:
    """Rebuild the spine model from the card's ``model_config`` and load its safetensors."""
    if not card.model_config:
        raise CardError(
            f"card {card.name!r} has no model_config, so the torch backend cannot rebuild the "
            f"model; use the onnxruntime backend or re-export: {card.export_command()}"
        )
    from vla_ros.spine import build_vla

    model = build_vla(card.model_config)
    path = card.path("safetensors")
    apply_state_dict(model, load_state_dict(path), str(path))
    return model.eval()


class TorchBackend(PolicyRuntime):
    """Runs ``predict_action`` (monolithic), the prefix + step loop (split) or the slow and
    fast graphs at their rates (dual) in torch.

    Options: ``device`` (``cpu``, ``cuda``, ``cuda:N``), ``cuda_graph`` (capture the model call,
    CUDA only; a dual-layout card runs its slow and fast graphs eagerly), ``dtype``
    (``fp32``/``fp16``/``bf16``; default fp32 on CPU, the card's precision on CUDA), ``layout``
    (default the card's), ``model`` (an already-built module, skips rebuilding from the card),
    ``threads`` (torch intra-op threads), ``seed``.
    """

    backend = "torch"

    def __init__(
        self,
        card: PolicyCard,
        device: str = "cpu",
        cuda_graph: bool = False,
        dtype: str | None = None,
        layout: str | None = None,
        model: Any | None = None,
        threads: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(card, seed=seed)
        import torch

        self.torch = torch
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch device {device!r} requested but CUDA is not available here "
                f"(torch {torch.__version__}); use device='cpu'"
            )
        if cuda_graph and self.device.type != "cuda":
            raise BackendUnavailableError(
                "cuda_graph=True needs a CUDA device; pass device='cuda' or cuda_graph=False"
            )
        if threads:
            torch.set_num_threads(int(threads))
        if dtype is None:  # the card's precision on CUDA when torch has it (not int8), else fp32
            cuda_dtype = card.precision if card.precision in _TORCH_DTYPES else "fp32"
            dtype = cuda_dtype if self.device.type == "cuda" else "fp32"
        if dtype not in _TORCH_DTYPES:
            raise BackendUnavailableError(
                f"torch backend dtype {dtype!r} is not one of {sorted(_TORCH_DTYPES)}"
            )
        self.dtype_name = dtype
        self.dtype = getattr(torch, _TORCH_DTYPES[dtype])
        self.layout = layout or card.layout
        if model is None:
            model = build_model_from_card(card)
        self.model = model.to(self.device).eval()
        # a LeRobot flow family rebuilt from a guided card: guidance is switched on, not configured
        guided = bool(self.rtc) and self.rtc["mode"] == "guided"
        if guided and getattr(model, "rtc_mode", None) is None and hasattr(model, "enable_rtc_guidance"):
            model.enable_rtc_guidance(float(self.rtc["max_guidance"]))
        if self.dtype != torch.float32:
            self.model = self.model.to(self.dtype)
        if self.layout == "split":
            missing = [a for a in ("export_prefix", "export_step") if not hasattr(model, a)]
            if missing:
                raise CardError(
                    f"layout 'split' needs the model to provide {missing}; family "
                    f"{card.family!r} does not: use layout='monolithic'"
                )
            self.num_steps = int(split_spec(card).get("num_steps", model.num_export_steps))
        if self.layout == "dual":
            if card.layout != "dual":
                raise CardError(
                    f"layout 'dual' needs a card exported with --layout dual (the slow graph's "
                    f"rate and latent names); card {card.name!r} is {card.layout!r}"
                )
            missing = [a for a in ("export_slow", "export_fast") if not hasattr(model, a)]
            if missing:
                raise CardError(
                    f"layout 'dual' needs the model to provide {missing}; family {card.family!r} "
                    "does not: use layout='monolithic'"
                )
        elif self.layout not in ("monolithic", "split"):
            raise BackendUnavailableError(
                f"torch backend layout {self.layout!r} is not one of monolithic, split, dual"
            )
        self.cuda_graph = cuda_graph
        self._timer = StageTimer(self._record, torch if self.device.type == "cuda" else None)
        self._graphs: dict[str, Any] = {}
        self._static: dict[str, Any] = {}

    # ------------------------------------------------------------------ model call
    def _to_tensor(self, name: str, v: np.ndarray) -> Any:
        t = self.torch.from_numpy(np.ascontiguousarray(v)).to(self.device, non_blocking=True)
        return t.to(self.dtype) if t.is_floating_point() else t

    def _obs(self, t: dict[str, Any]) -> dict[str, Any]:
        skip = ("noise", *RTC_FEEDS)
        return {k: v for k, v in t.items() if k not in skip and not k.startswith("__")}

    def _eager(self, t: dict[str, Any]) -> Any:
        if self.layout == "monolithic":
            return self.model.predict_action(self._obs(t), noise=t.get("noise"))
        with self._timer("prefix"):
            prefix = self.model.export_prefix(self._obs(t))
        x = t.get("noise")
        if x is None:
            x = self.torch.zeros((1, *self.card.io.noise_shape), device=self.device, dtype=self.dtype)
        rtc = "rtc_mask" in t  # real-time chunking: the conditioned / guided step (exact VJP)
        for i in range(self.num_steps):
            with self._timer("step"):
                idx = self.torch.tensor(i, dtype=self.torch.int64, device=self.device)
                if rtc:
                    beta = t.get("rtc_max_guidance")
                    x = self.model.export_step_rtc(prefix, x, idx, t["rtc_actions"], t["rtc_mask"], beta)
                else:
                    x = self.model.export_step(prefix, x, idx)
        return x

    def run_model(self, feeds: dict[str, np.ndarray], stamp_ns: int = 0) -> np.ndarray:
        if self.layout == "dual":  # two graphs, two rates: the shared driver, graph by graph
            return self._run_dual(feeds, stamp_ns)
        with self.torch.inference_mode():
            t = {k: self._to_tensor(k, v) for k, v in feeds.items()}
            # calls with committed actions (real-time chunking) run eagerly: the captured
            # graphs are the plain steps (the guided step runs autograd)
            graphed = self.cuda_graph and not any(k in t for k in RTC_FEEDS)
            out = self._replay(t) if graphed else self._eager(t)
            result = out.float().cpu().numpy()
        self._timer.flush()
        return self.cut_actions(result)

    def _call(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            t = {k: self._to_tensor(k, v) for k, v in feeds.items()}
            if graph == "model":
                out = {"actions": self.model.predict_action(self._obs(t), noise=t.get("noise"))}
            elif graph == "slow":
                out = dict(self.model.export_slow(t))
            elif graph == "fast":
                keys = list(dual_spec(self.card)["slow_outputs"])
                latent = {k: t.pop(k) for k in keys}
                out = {"actions": self.model.export_fast(latent, t)}
            elif graph == "prefix":
                spec = split_spec(self.card)
                feats = self.model.export_prefix(t)
                out = {g: feats[k] for g, k in zip(spec["prefix_outputs"], spec["prefix_keys"])}
            else:
                spec = split_spec(self.card)
                x, idx = t.pop("x"), t.pop("step_index")
                feats = {k: t[g] for g, k in zip(spec["prefix_outputs"], spec["prefix_keys"])}
                if "rtc_mask" in t:  # conditioned step / guided step_rtc
                    y, m, beta = t["rtc_actions"], t["rtc_mask"], t.get("rtc_max_guidance")
                    out = {"x_next": self.model.export_step_rtc(feats, x, idx, y, m, beta)}
                else:
                    out = {"x_next": self.model.export_step(feats, x, idx)}
            return {k: v.float().cpu().numpy() for k, v in out.items()}

    # ------------------------------------------------------------------ CUDA graphs
    def _capture(self, t: dict[str, Any]) -> None:
        """Capture the model call with static buffers (warm-up on a side stream first)."""
        torch = self.torch
        static = {k: v.clone() for k, v in t.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        if self.layout == "monolithic":
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._eager(static)
            torch.cuda.current_stream().wait_stream(side)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                static["__out"] = self.model.predict_action(self._obs(static), noise=static.get("noise"))
            self._graphs["model"] = g
        else:
            static["__idx"] = torch.zeros((), dtype=torch.int64, device=self.device)
            with torch.cuda.stream(side):
                for _ in range(3):
                    prefix = self.model.export_prefix(self._obs(static))
                    self.model.export_step(prefix, static["noise"], static["__idx"])
            torch.cuda.current_stream().wait_stream(side)
            gp = torch.cuda.CUDAGraph()
            with torch.cuda.graph(gp):
                static["__prefix"] = self.model.export_prefix(self._obs(static))
            gs = torch.cuda.CUDAGraph()
            with torch.cuda.graph(gs, pool=gp.pool()):
                static["__out"] = self.model.export_step(static["__prefix"], static["noise"], static["__idx"])
            self._graphs["prefix"], self._graphs["step"] = gp, gs
        self._static = static

    def _replay(self, t: dict[str, Any]) -> Any:
        if "noise" not in t:
            t = dict(t)
            t["noise"] = self.torch.zeros(
                (1, *self.card.io.noise_shape), device=self.device, dtype=self.dtype
            )
        if not self._graphs:
            self._capture(t)
        s = self._static
        for k, v in t.items():
            s[k].copy_(v)
        if self.layout == "monolithic":
            self._graphs["model"].replay()
            return s["__out"].clone()
        with self._timer("prefix"):
            self._graphs["prefix"].replay()
        for i in range(self.num_steps):
            with self._timer("step"):
                s["__idx"].fill_(i)
                self._graphs["step"].replay()
                s["noise"].copy_(s["__out"])
        return s["noise"].clone()

    def info(self) -> dict[str, Any]:
        return {
            "torch": self.torch.__version__,
            "device": str(self.device),
            "dtype": self.dtype_name,
            # the dual layout runs its two graphs eagerly (they run at different rates)
            "cuda_graph": self.cuda_graph and self.layout != "dual",
            "layout": self.layout,
            "intra_op_threads": self.torch.get_num_threads(),
        }

    def close(self) -> None:
        self._graphs.clear()
        self._static.clear()
