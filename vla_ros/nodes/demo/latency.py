"""Injected inference latency for the demo: a runtime that takes ``latency_ms`` longer per call.

A test aid, not a policy_node parameter: ``vla-ros demo --latency-ms 300`` builds the real
policy node with its runtime wrapped, so every ``infer`` returns ``latency_ms`` later on the
node's worker thread, exactly where a slower model spends its time. Everything downstream sees
what a slow model would cause: the chunk's stamp (the observation's) is older when it is
published, the node's measured inference time and observation -> chunk latency include the
delay, and the worker starts its next inference later. The node's start-up warm-up calls the
wrapped runtime directly (not slowed). Nothing on a robot can switch it on.
"""

from __future__ import annotations

import time
from typing import Any


class SlowedRuntime:
    """Delegates to ``runtime``; :meth:`infer` sleeps ``latency_ms`` after the real inference.

    Raises ``ValueError`` for a negative or non-finite ``latency_ms``.
    """

    def __init__(self, runtime: Any, latency_ms: float) -> None:
        if not 0 <= float(latency_ms) < float("inf"):
            raise ValueError(f"injected latency must be a finite number of ms >= 0, got {latency_ms!r}")
        self._runtime = runtime
        self.latency_s = float(latency_ms) / 1e3

    def infer(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped runtime's ``infer``, returned ``latency_ms`` later."""
        out = self._runtime.infer(*args, **kwargs)
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)
