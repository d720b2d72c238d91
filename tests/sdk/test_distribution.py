"""The SDK is its own distribution: it imports only the standard library and httpx, and its
typed options stay in step with what the service accepts."""

import ast
import subprocess
import sys
import typing
from pathlib import Path

from enclave_client import JobOptions

from app.jobs.options import JobOptions as ServiceJobOptions

SDK = Path(__file__).parents[2] / "sdk"


def imported_top_level_names(package: Path) -> set[str]:
    names: set[str] = set()
    for module in package.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_sdk_imports_only_the_standard_library_and_httpx():
    outside = imported_top_level_names(SDK / "enclave_client") - set(sys.stdlib_module_names)
    assert outside == {"enclave_client", "httpx"}


def test_importing_the_sdk_loads_nothing_of_the_service():
    probe = (
        "import sys, enclave_client; "
        "print(sorted(m for m in ('app', 'pipeline', 'pydantic', 'fastapi', 'numpy') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=SDK, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_distribution_declares_httpx_as_its_only_dependency():
    import tomllib

    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    assert project["name"] == "enclave-client"
    assert [dependency.split(">")[0] for dependency in project["dependencies"]] == ["httpx"]


def test_typed_options_name_every_service_option_with_the_same_shape():
    assert JobOptions.names() == set(ServiceJobOptions.model_fields)
    hints = typing.get_type_hints(JobOptions)
    for name, field in ServiceJobOptions.model_fields.items():
        service_is_tuple = typing.get_origin(field.annotation) is tuple
        sdk_is_tuple = any(
            typing.get_origin(argument) is tuple for argument in typing.get_args(hints[name])
        )
        assert service_is_tuple == sdk_is_tuple, name


def test_typed_options_send_only_what_was_set():
    options = JobOptions(frame_processors=("face_swapper",), keep_fps=False, extra={"new": 1})
    assert options.to_json() == {"frame_processors": ["face_swapper"], "keep_fps": False, "new": 1}
    assert ServiceJobOptions.model_validate(JobOptions(face_mask_padding=(1, 2, 3, 4)).to_json())
