"""vla_ros.export.flops: exact multiply-add counts from ONNX shapes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vla_ros.export.flops import graph_flops


def test_counts_matmul_gemm_conv_exactly(tmp_path) -> None:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.random((16, 8, 3, 3), dtype=np.float32), "Wc"),  # Conv 8->16, 3x3
        numpy_helper.from_array(rng.random((16 * 6 * 6, 10), dtype=np.float32), "Wm"),
        numpy_helper.from_array(rng.random((5, 10), dtype=np.float32), "Wg"),  # Gemm transB
    ]
    nodes = [
        helper.make_node("Conv", ["x", "Wc"], ["c"]),  # [2, 8, 8, 8] -> [2, 16, 6, 6]
        helper.make_node("Flatten", ["c"], ["f"]),  # [2, 576]
        helper.make_node("MatMul", ["f", "Wm"], ["m"]),  # [2, 10]
        helper.make_node("Gemm", ["m", "Wg"], ["y"], transB=1),  # [2, 5]
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        inits,
    )
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    flops = graph_flops(path)
    conv = 2 * (2 * 16 * 6 * 6) * (8 * 3 * 3)
    matmul = 2 * (2 * 10) * 576
    gemm = 2 * (2 * 5) * 10
    assert flops == {
        "total": conv + matmul + gemm,
        "unknown_nodes": 0,
        "Conv": conv,
        "MatMul": matmul,
        "Gemm": gemm,
    }


def test_split_card_counts_prefix_plus_every_step(tmp_path) -> None:
    from vla_ros.export import export_policy
    from vla_ros.export.flops import card_flops

    card = export_policy("flow_matching_tiny", tmp_path / "card", layout="split")
    prefix = graph_flops(card.root / card.files["onnx_prefix"])["total"]
    step = graph_flops(card.root / card.files["onnx_step"])["total"]
    assert prefix > 0 and step > 0
    assert card_flops(card) == prefix + int(card.export["split"]["num_steps"]) * step
