from pathlib import Path

import pytest

from pipeline.models import ModelRegistry


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory with every bundled model materialised once per test session."""
    directory = tmp_path_factory.mktemp("models")
    ModelRegistry(directory).prepare()
    return directory
