"""``enclave models …`` as an operator runs it: list, prepare, verify, add, remove."""

import json
import shutil
from pathlib import Path

import pytest

import app.cli
from app.cli import main
from pipeline.models.cli import default_model_dir
from tests.pipeline.contract_models import make_inswapper


@pytest.fixture(autouse=True)
def only_model_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``enclave`` entry point and error mapping, with just the models commands."""
    monkeypatch.setattr(app.cli, "COMMAND_MODULES", ("pipeline.models.cli",))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def own_model_dir(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy)
    return copy


def test_default_model_dir_follows_env_then_xdg_then_home() -> None:
    assert default_model_dir({"ENCLAVE_MODEL_DIR": "/srv/models"}) == Path("/srv/models")
    assert default_model_dir({"XDG_DATA_HOME": "/data"}) == Path("/data/enclave/models")
    assert default_model_dir({}) == Path.home() / ".local/share/enclave/models"


def test_prepare_then_verify_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = str(tmp_path / "models")
    code, out, _ = run(capsys, "models", "verify", "--model-dir", models)
    assert code == 0 and "not written yet" in out
    code, out, _ = run(capsys, "models", "prepare", "--model-dir", models)
    assert code == 0 and "sface: ready" in out
    code, out, _ = run(capsys, "models", "verify", "--model-dir", models)
    assert code == 0 and "all model files verified" in out
    code, out, _ = run(capsys, "models", "list", "--model-dir", models)
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(rows) == {"retinaface", "yunet", "sface", "dlib68", "realesrgan_x4plus"}
    assert all(row.split()[-1] == "ok" and "bundled" in row for row in rows.values())
    assert "CC0-1.0" in rows["dlib68"]


def test_add_shows_licence_status_in_list_and_json(
    own_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_inswapper(tmp_path / "inswapper_128.onnx")
    code, out, _ = run(
        capsys,
        "models",
        "add",
        str(model),
        "--task",
        "swap",
        "--kind",
        "inswapper",
        "--licence",
        "non-commercial (insightface)",
        "--model-dir",
        str(own_model_dir),
    )
    assert code == 0
    assert "added inswapper_128" in out and "--allow-non-commercial-models" in out
    code, out, _ = run(capsys, "models", "list", "--json", "--model-dir", str(own_model_dir))
    listed = {row["name"]: row for row in json.loads(out)["models"]}
    assert listed["inswapper_128"] | {"files": None} == {
        "name": "inswapper_128",
        "task": "swap",
        "kind": "inswapper",
        "licence": "non-commercial (insightface)",
        "commercial_use": False,
        "origin": "provisioned",
        "status": "ok",
        "source": "provisioned by operator",
        "files": None,
    }
    code, out, _ = run(
        capsys, "models", "remove", "inswapper_128", "--model-dir", str(own_model_dir)
    )
    assert code == 0 and not (own_model_dir / "inswapper_128.onnx").exists()


def test_verify_fails_with_one_line_per_bad_file(
    own_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = own_model_dir / "yunet_2023mar.onnx"
    target.write_bytes(target.read_bytes()[:-10])
    code, out, err = run(capsys, "models", "verify", "--model-dir", str(own_model_dir))
    assert code == 1
    assert "mismatch     yunet" in out
    assert err.startswith("enclave: error: 1 model file(s) failed verification (yunet)")
    assert "Traceback" not in err


def test_bad_add_requests_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = str(tmp_path / "models")
    code, _, err = run(
        capsys, "models", "add", str(tmp_path / "missing.onnx"), "--task", "swap",
        "--kind", "inswapper", "--licence", "x", "--model-dir", models,
    )  # fmt: skip
    assert code == 2
    assert err.strip().count("\n") == 0 and "does not exist" in err
    model = make_inswapper(tmp_path / "inswapper.onnx")
    code, _, err = run(
        capsys, "models", "add", str(model), "--task", "detect", "--kind", "inswapper",
        "--licence", "x", "--model-dir", models,
    )  # fmt: skip
    assert code == 2 and "performs task 'swap'" in err


def test_env_selects_the_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENCLAVE_MODEL_DIR", str(tmp_path / "from-env"))
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and f"model directory: {tmp_path / 'from-env'}" in out
