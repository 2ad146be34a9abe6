"""Multiply-accumulate work of an ONNX graph: the floor any backend's latency is measured against.

Counts 2 FLOPs per multiply-add of ``MatMul``, ``Gemm``, ``Conv`` and ``ConvTranspose`` from the
graph's static shapes (``onnx.shape_inference``); element-wise and normalization nodes are left
out (they are memory-bound and a small share of a VLA's work). A split card's work per inference
is ``prefix + num_steps * step``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    out: dict[str, tuple[int, ...]] = {}
    for vi in (*g.input, *g.output, *g.value_info):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out[vi.name] = tuple(int(d.dim_value) for d in dims)
    for init in g.initializer:
        out[init.name] = tuple(int(d) for d in init.dims)
    return out


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _node_flops(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> int | None:
    ins = [shapes.get(n) for n in node.input[:2]]
    out = shapes.get(node.output[0])
    if node.op_type == "MatMul" and ins[0] is not None and out is not None:
        k = ins[0][-1]
        return 2 * int(np.prod(out, dtype=np.int64)) * k
    if node.op_type == "Gemm" and ins[0] is not None and out is not None:
        k = ins[0][0] if _attr(node, "transA", 0) else ins[0][1]
        return 2 * int(np.prod(out, dtype=np.int64)) * k
    if node.op_type in ("Conv", "ConvTranspose") and ins[1] is not None and out is not None:
        # weight [Cout, Cin/g, kh, kw] (Conv): each output element sums Cin/g * kh * kw products
        w = ins[1]
        per_out = int(np.prod(w[1:], dtype=np.int64))
        if node.op_type == "ConvTranspose" and ins[0] is not None:
            return 2 * int(np.prod(ins[0], dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))
        return 2 * int(np.prod(out, dtype=np.int64)) * per_out
    return None


def graph_flops(path: str | Path) -> dict[str, int]:
    """FLOPs of one ONNX file: ``{"total": ..., "<op type>": ..., "unknown_nodes": n}``.

    ``unknown_nodes`` counts MatMul/Gemm/Conv nodes whose shapes could not be inferred (their
    work is missing from the total).
    """
    model = onnx.load(str(path), load_external_data=False)
    shapes = _shapes(model)
    out: dict[str, int] = {"total": 0, "unknown_nodes": 0}
    for node in _nodes(model.graph):
        if node.op_type not in ("MatMul", "Gemm", "Conv", "ConvTranspose"):
            continue
        f = _node_flops(node, shapes)
        if f is None:
            out["unknown_nodes"] += 1
            continue
        out[node.op_type] = out.get(node.op_type, 0) + f
        out["total"] += f
    return out


def _nodes(graph: onnx.GraphProto) -> Iterable[onnx.NodeProto]:
    yield from graph.node


def card_flops(card) -> int:
    """FLOPs of one ``infer`` of a card: monolithic model, or prefix + num_steps x step (split),
    or fast graph + slow graph (dual, the slow graph counted as if it reran every inference)."""
    layout = card.layout
    if layout == "monolithic":
        return graph_flops(card.root / card.files["onnx"])["total"]
    if layout == "split":
        steps = int(card.export["split"]["num_steps"])
        prefix = graph_flops(card.root / card.files["onnx_prefix"])["total"]
        step = graph_flops(card.root / card.files["onnx_step"])["total"]
        return prefix + steps * step
    return sum(graph_flops(card.root / card.files[k])["total"] for k in card.files if k.startswith("onnx"))


__all__ = ["card_flops", "graph_flops"]
