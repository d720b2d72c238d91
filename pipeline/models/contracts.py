"""What a provisioned ONNX file must look like for its kind, checked when it is added.

A wrong file (a detector added as a swapper, a GFPGAN export with other tensor names)
should fail at ``enclave models add`` with a sentence about the file, not hours later
inside a job. Only declared names and shapes are checked; the file is not run.
"""

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError


@dataclass(frozen=True)
class OnnxContract:
    inputs: int
    outputs: int
    input_names: frozenset[str] | None = None
    image_side: int | None = None
    """Expected height and width of the (first) image input when they are static."""
    needs_initializers: bool = False


CONTRACTS: dict[str, OnnxContract] = {
    "inswapper": OnnxContract(
        2, 1, frozenset({"target", "source"}), image_side=128, needs_initializers=True
    ),
    "arcface": OnnxContract(1, 1, image_side=112),
    "scrfd": OnnxContract(1, 9),
    "gfpgan": OnnxContract(1, 1, frozenset({"input"}), image_side=512),
}
"""Contracts of the provisioned kinds; other kinds are not checked at add time."""


def _static_dims(value: object) -> list[int | None]:
    dims = value.type.tensor_type.shape.dim  # type: ignore[attr-defined]
    return [int(d.dim_value) if d.HasField("dim_value") else None for d in dims]


def check_contract(kind: str, path: Path) -> None:
    """Raise ``InputError`` if ``path`` cannot be a ``kind`` model."""
    contract = CONTRACTS.get(kind)
    if contract is None:
        return
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError, onnx raises its own types
        raise InputError(f"{path.name} is not a readable ONNX model ({error})") from error
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    outputs = list(model.graph.output)
    found = f"{path.name} has inputs {[v.name for v in inputs]} and {len(outputs)} output(s)"
    if len(inputs) != contract.inputs or len(outputs) != contract.outputs:
        raise InputError(
            f"{found}; a {kind!r} model has {contract.inputs} input(s) and "
            f"{contract.outputs} output(s)"
        )
    if contract.input_names is not None and {v.name for v in inputs} != contract.input_names:
        raise InputError(f"{found}; a {kind!r} model has inputs {sorted(contract.input_names)}")
    if contract.image_side is not None:
        image = max(inputs, key=lambda value: len(_static_dims(value)))
        dims = _static_dims(image)
        sides = [d for d in dims[-2:] if d is not None]
        if len(dims) != 4 or any(side != contract.image_side for side in sides):
            raise InputError(
                f"{path.name}: input {image.name!r} has shape {dims}; a {kind!r} model takes "
                f"[N, 3, {contract.image_side}, {contract.image_side}]"
            )
    if contract.needs_initializers and not model.graph.initializer:
        raise InputError(f"{path.name} has no initializers; a {kind!r} model ends with emap")
