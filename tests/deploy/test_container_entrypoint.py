"""The image's entrypoint refuses to start on altered model files and runs the command otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import REPOSITORY

ENTRYPOINT = REPOSITORY / "deploy" / "docker" / "entrypoint.sh"
EX_CONFIG = 78


@pytest.fixture(scope="module")
def prepared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory as the operator ships it: bundled models prepared, hashes recorded."""
    directory = tmp_path_factory.mktemp("models")
    subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "prepare", "--model-dir", str(directory)],
        check=True,
        capture_output=True,
        cwd=REPOSITORY,
    )
    return directory


def run_entrypoint(model_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    # The entrypoint calls `enclave` from PATH, as in the image (the venv's bin comes first).
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    environment["ENCLAVE_MODEL_DIR"] = str(model_dir)
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_altered_model_file_stops_the_container(prepared_models: Path, tmp_path: Path):
    models = tmp_path / "models"
    # Hard links keep the copy cheap (the bundled models are ~150 MB); the altered file is
    # rewritten as a new inode so the shared original stays intact.
    shutil.copytree(prepared_models, models, copy_function=os.link)
    altered = models / "yunet_2023mar.onnx"
    content = altered.read_bytes()
    altered.unlink()
    altered.write_bytes(content + b"tampered")
    result = run_entrypoint(models, "serve")
    assert result.returncode == EX_CONFIG
    assert "failed verification; not starting" in result.stderr
    assert "yunet" in result.stdout + result.stderr


def test_intact_models_hand_over_to_the_command(prepared_models: Path):
    result = run_entrypoint(prepared_models, "run", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: enclave run" in result.stdout


def test_other_commands_run_without_the_model_gate(tmp_path: Path):
    result = run_entrypoint(tmp_path / "absent", "models", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: enclave models" in result.stdout
