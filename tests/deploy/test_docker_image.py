"""The Dockerfile keeps its promises: multi-stage, pinned CUDA base, non-root, no compilers.

hadolint lints the file in CI (.ci/deploy-checks); these tests pin the project's own rules,
which a generic linter does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from tests.deploy.conftest import REPOSITORY

COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|cython\S*|\S+-dev)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    stages: list[Stage] = []
    for entry in logical:
        instruction, _, arguments = entry.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((instruction, arguments))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((REPOSITORY / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_builder_makes_the_wheel_and_runtime_installs_it(stages: list[Stage]):
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert any("pip wheel --no-deps" in run for run in builder.arguments("RUN"))
    assert any(f"--from={builder.name}" in copy for copy in runtime.arguments("COPY"))


def test_runtime_base_is_a_pinned_cuda_cudnn_runtime(final: Stage):
    image, _, tag = final.base.partition(":")
    assert image == "nvidia/cuda"
    assert re.fullmatch(r"\d+\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+(@sha256:[0-9a-f]{64})?", tag)


def test_every_base_image_is_pinned(stages: list[Stage]):
    for stage in stages:
        _, _, tag = stage.base.partition(":")
        assert tag and tag != "latest", f"{stage.base} is not pinned"


def test_runs_as_a_numeric_non_root_user(final: Stage):
    users = final.arguments("USER")
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000


def test_no_compiler_in_the_final_stage(final: Stage):
    for run in final.arguments("RUN"):
        for install in re.findall(r"apt-get install[^&;]*", run):
            assert not COMPILERS.search(install), f"compiler or headers installed: {install}"
        if "pip install" in run:
            # Only wheels: pip never builds an sdist (which would need a compiler) here.
            for pip in re.findall(r"pip install[^&;]*", run):
                assert "--only-binary=:all:" in pip, pip


def test_onnxruntime_gpu_replaces_the_cpu_build(final: Stage):
    run = " ".join(final.arguments("RUN"))
    assert "pip uninstall -y onnxruntime" in run
    assert re.search(r"onnxruntime-gpu==\$\{ONNXRUNTIME_GPU_VERSION\}", run)
    pinned = [arg for arg in final.arguments("ARG") if arg.startswith("ONNXRUNTIME_GPU_VERSION=")]
    assert pinned and re.fullmatch(r"ONNXRUNTIME_GPU_VERSION=\d+\.\d+\.\d+", pinned[0])


def test_health_check_calls_healthz_with_the_probe(final: Stage):
    (healthcheck,) = final.arguments("HEALTHCHECK")
    assert "healthcheck.py" in healthcheck
    probe = (REPOSITORY / "deploy" / "docker" / "healthcheck.py").read_text(encoding="utf-8")
    assert "/healthz" in probe
    assert any("deploy/docker/healthcheck.py" in copy for copy in final.arguments("COPY"))


def test_models_are_a_verified_mount(final: Stage):
    env = " ".join(final.arguments("ENV"))
    assert "ENCLAVE_MODEL_DIR=/models" in env
    (entrypoint,) = final.arguments("ENTRYPOINT")
    assert "enclave-entrypoint" in entrypoint
    script = (REPOSITORY / "deploy" / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    assert "enclave models verify" in script
    (command,) = final.arguments("CMD")
    assert command.startswith('["serve"'), command


def test_default_command_listens_where_the_probe_and_port_are(final: Stage):
    (command,) = final.arguments("CMD")
    assert '"--host", "0.0.0.0", "--port", "443"' in command
    assert final.arguments("EXPOSE") == ["443"]
    probe = (REPOSITORY / "deploy" / "docker" / "healthcheck.py").read_text(encoding="utf-8")
    assert "https://127.0.0.1:443/healthz" in probe


def test_build_context_is_an_allowlist():
    lines = [
        line.strip()
        for line in (REPOSITORY / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "app", "pipeline", "deploy/docker"}
