"""Execution providers: ordered fallback to what onnxruntime has, reported honestly."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.errors import ModelError, ProviderError
from pipeline.models import (
    ModelRegistry,
    available_providers,
    create_session,
    resolve_providers,
    session_providers,
)


def test_gpu_providers_missing_here_fall_back_to_cpu_and_say_so() -> None:
    assert "cuda" not in available_providers()  # this machine has no GPU build
    choice = resolve_providers(["cuda", "tensorrt", "cpu"])
    assert choice.requested == ("cuda", "tensorrt", "cpu")
    assert choice.applied == ("cpu",)
    assert choice.unavailable == ("cuda", "tensorrt")


def test_available_providers_are_applied_in_the_requested_order() -> None:
    choice = resolve_providers(["tensorrt", "cuda", "cpu"], available=["cpu", "cuda", "tensorrt"])
    assert choice.applied == ("tensorrt", "cuda", "cpu")
    assert choice.onnxruntime_providers == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


def test_cpu_is_the_last_resort_even_when_not_requested() -> None:
    choice = resolve_providers(["cuda"], available=["cpu"])
    assert choice.applied == ("cpu",)
    assert choice.unavailable == ("cuda",)


def test_provider_names_are_accepted_in_facefusion_and_onnxruntime_spelling() -> None:
    choice = resolve_providers(["CUDA", "CUDAExecutionProvider", "DmlExecutionProvider"], ["cpu"])
    assert choice.requested == ("cuda", "directml")


def test_an_unknown_provider_is_an_error_listing_the_valid_names() -> None:
    with pytest.raises(ProviderError, match=r"'cdua'.*cuda, tensorrt"):
        resolve_providers(["cdua", "cpu"])


def test_a_session_reports_the_providers_it_actually_runs_on(model_dir: Path) -> None:
    choice = resolve_providers(["cuda", "cpu"])
    session = create_session(ModelRegistry(model_dir).path("sface"), choice, threads=1)
    assert session_providers(session) == ("cpu",)
    (embedding,) = session.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})
    assert embedding.shape == (1, 128)


def test_sessions_do_not_flood_stderr_with_onnxruntime_warnings(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # an initializer nobody reads makes onnxruntime warn at its default log level
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "noisy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.zeros(4, np.float32), "unused")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "noisy.onnx"))
    create_session(tmp_path / "noisy.onnx", resolve_providers(["cpu"]))
    assert "unused" not in capfd.readouterr().err


def test_a_file_onnxruntime_cannot_load_is_a_model_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"broken\.onnx"):
        create_session(broken, resolve_providers(["cpu"]))
