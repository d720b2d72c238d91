"""Small ONNX files with the same contracts as the provisioned models we cannot ship.

Each generator writes a graph with the real model's input and output names, shapes and
value ranges (and, for inswapper, the ``emap`` matrix as the last initializer), with
deterministic weights. They are cheap to build and run, so tests push them through the
real loading, pre-processing, inference and paste-back code paths.
"""

from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8  # onnxruntime 1.18+ reads it; newer IR versions are not needed here


def _initializer(name: str, values: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(values, dtype=np.float32), name)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="enclave-tests"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _identity_ish_kernel(channels: int, rng: np.random.Generator) -> np.ndarray:
    """A 3×3 conv that mostly passes each channel through, with a little mixing."""
    kernel = rng.normal(0.0, 0.01, (channels, channels, 3, 3))
    for channel in range(channels):
        kernel[channel, channel, 1, 1] += 1.0
    return kernel


def make_inswapper(path: Path, cost: Literal["tiny", "realistic"] = "tiny") -> Path:
    """inswapper_128 contract: ``target`` [1,3,128,128] RGB/255 + ``source`` [1,512] latent.

    Output ``output`` [1,3,128,128] in [0, 1]: the target crop tinted by a projection of
    the source latent, so a different source visibly changes the result. The last
    initializer is ``emap`` [512,512], as in the real model. ``realistic`` adds a
    32-channel conv tower so a call costs about what the real model does on CPU.
    """
    rng = np.random.default_rng(128)
    nodes = [
        helper.make_node("Conv", ["target", "target_w", "target_b"], ["target_feat"], pads=[1] * 4),
        helper.make_node("MatMul", ["source", "source_w"], ["source_proj"]),
        helper.make_node("Tanh", ["source_proj"], ["source_tanh"]),
        helper.make_node("Reshape", ["source_tanh", "tint_shape"], ["tint"]),
        helper.make_node("Mul", ["tint", "tint_gain"], ["tint_scaled"]),
        helper.make_node("Add", ["target_feat", "tint_scaled"], ["mixed"]),
    ]
    initializers = [
        _initializer("target_w", _identity_ish_kernel(3, rng)),
        _initializer("target_b", np.zeros(3)),
        _initializer("source_w", rng.normal(0.0, 1.0, (512, 3)) * 2.0),
        numpy_helper.from_array(np.array([1, 3, 1, 1], dtype=np.int64), "tint_shape"),
        _initializer("tint_gain", np.array([0.35])),
    ]
    last = "mixed"
    if cost == "realistic":
        width, depth = 32, 6
        nodes.append(helper.make_node("Conv", ["target", "tower_in_w"], ["tower_0"], pads=[1] * 4))
        initializers.append(_initializer("tower_in_w", rng.normal(0, 0.1, (width, 3, 3, 3))))
        for layer in range(depth):
            weight = f"tower_{layer}_w"
            nodes += [
                helper.make_node(
                    "Conv", [f"tower_{layer}", weight], [f"tower_{layer}_c"], pads=[1] * 4
                ),
                helper.make_node("Relu", [f"tower_{layer}_c"], [f"tower_{layer + 1}"]),
            ]
            initializers.append(
                _initializer(weight, rng.normal(0, 1.0 / (3 * width), (width, width, 3, 3)))
            )
        nodes += [
            helper.make_node("Conv", [f"tower_{depth}", "tower_out_w"], ["tower_out"]),
            helper.make_node("Add", ["mixed", "tower_out"], ["mixed_tower"]),
        ]
        initializers.append(_initializer("tower_out_w", rng.normal(0, 1e-3, (3, width, 1, 1))))
        last = "mixed_tower"
    nodes.append(helper.make_node("Clip", [last, "zero", "one"], ["output"]))
    initializers += [_initializer("zero", np.array(0.0)), _initializer("one", np.array(1.0))]
    # the real model keeps emap as its very last initializer; callers read it from there
    emap = rng.normal(0.0, 1.0 / np.sqrt(512), (512, 512))
    initializers.append(_initializer("emap", emap))
    graph = helper.make_graph(
        nodes,
        "inswapper_128_contract",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
        initializers,
    )
    return _save(graph, path)


def make_arcface(path: Path) -> Path:
    """ArcFace w600k_r50 contract: ``input.1`` [N,3,112,112], (x − 127.5) / 127.5 RGB → [N,512].

    The "embedding" is a fixed random projection of an 8× average-pooled crop: similar
    crops give similar vectors, different faces different ones.
    """
    rng = np.random.default_rng(112)
    nodes = [
        helper.make_node(
            "AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "projection", "bias"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes,
        "arcface_w600k_r50_contract",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 512])],
        [
            _initializer("projection", rng.normal(0.0, 1.0 / np.sqrt(588), (588, 512))),
            _initializer("bias", np.zeros(512)),
        ],
    )
    return _save(graph, path)


def make_gfpgan(path: Path) -> Path:
    """GFPGAN 1.4 contract: ``input`` [1,3,512,512] in [-1, 1] → ``output`` same shape and range.

    The "restoration" is a strong unsharp mask (7×7, amount 3): a visible change a test can
    measure, confined to where the face crop is pasted back.
    """
    amount, radius = 3.0, 3
    side = 2 * radius + 1
    unsharp = np.full((side, side), -amount / side**2, dtype=np.float32)
    unsharp[radius, radius] += 1.0 + amount
    kernel = np.zeros((3, 1, side, side), dtype=np.float32)
    kernel[:, 0] = unsharp
    nodes = [
        helper.make_node("Conv", ["input", "sharpen"], ["sharpened"], pads=[radius] * 4, group=3),
        helper.make_node("Clip", ["sharpened", "low", "high"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "gfpgan_1_4_contract",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 512, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 512, 512])],
        [
            _initializer("sharpen", kernel),
            _initializer("low", np.array(-1.0)),
            _initializer("high", np.array(1.0)),
        ],
    )
    return _save(graph, path)


SCRFD_STRIDES = (8, 16, 32)
SCRFD_ANCHORS = 2


def make_scrfd(
    path: Path,
    box: tuple[float, float, float, float] = (240.0, 200.0, 400.0, 420.0),
    kps: tuple[tuple[float, float], ...] = (
        (285.0, 280.0),
        (355.0, 280.0),
        (320.0, 320.0),
        (292.0, 370.0),
        (348.0, 370.0),
    ),
    score: float = 0.92,
) -> Path:
    """SCRFD det_10g contract: ``input.1`` [1,3,640,640] → 9 outputs (score, bbox, kps × 3 strides).

    Outputs are laid out as the real model's (no batch axis; 2 anchors per cell; bbox as
    distances and kps as offsets from the anchor centre, in units of the stride). The
    detector "finds" exactly one face: ``box`` and ``kps`` in 640×640 input pixels, at
    the stride-16 anchor nearest the box centre. The outputs add 0 × mean(input), so the
    graph genuinely consumes its input.
    """
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["mean"], keepdims=0)]
    nodes.append(helper.make_node("Mul", ["mean", "zero"], ["nothing"]))
    initializers = [_initializer("zero", np.array(0.0))]
    outputs: dict[str, list[onnx.ValueInfoProto]] = {"score": [], "bbox": [], "kps": []}
    for stride in SCRFD_STRIDES:
        cells = 640 // stride
        count = cells * cells * SCRFD_ANCHORS
        scores = np.full((count, 1), 0.01, dtype=np.float32)
        distances = np.ones((count, 4), dtype=np.float32)
        offsets = np.zeros((count, 10), dtype=np.float32)
        if stride == 16:
            column, row = round(centre_x / stride), round(centre_y / stride)
            anchor = (row * cells + column) * SCRFD_ANCHORS
            anchor_x, anchor_y = column * stride, row * stride
            scores[anchor] = score
            distances[anchor] = (
                np.array(
                    [anchor_x - box[0], anchor_y - box[1], box[2] - anchor_x, box[3] - anchor_y]
                )
                / stride
            )
            offsets[anchor] = (
                np.array([[x - anchor_x, y - anchor_y] for x, y in kps]).reshape(-1) / stride
            )
        for kind, values in (("score", scores), ("bbox", distances), ("kps", offsets)):
            name = f"{kind}_{stride}"
            initializers.append(_initializer(f"{name}_const", values))
            nodes.append(helper.make_node("Add", [f"{name}_const", "nothing"], [name]))
            outputs[kind].append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, list(values.shape))
            )
    graph = helper.make_graph(
        nodes,
        "scrfd_10g_contract",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 640, 640])],
        outputs["score"] + outputs["bbox"] + outputs["kps"],
        initializers,
    )
    return _save(graph, path)
