"""The service commands: serve's safety rails, db upgrade, and openapi.yaml kept in sync."""

import argparse
from pathlib import Path

import pytest
from sqlalchemy import inspect

from app.cli import EXIT_BAD_INPUT, CommandError, main
from app.service_cli import openapi_document, server_options

REPO_ROOT = Path(__file__).resolve().parents[2]


def serve_args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(
        **{"host": "127.0.0.1", "port": 8000, "insecure_dev": False, **values}
    )


def test_serve_refuses_plain_http_without_the_dev_flag() -> None:
    with pytest.raises(CommandError) as refused:
        server_options(serve_args())
    assert refused.value.exit_code == EXIT_BAD_INPUT
    assert "--insecure-dev" in str(refused.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "example.com", "::"])
def test_insecure_dev_binds_to_loopback_only(host: str) -> None:
    with pytest.raises(CommandError, match="loopback"):
        server_options(serve_args(host=host, insecure_dev=True))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_insecure_dev_on_loopback_is_served(host: str) -> None:
    options = server_options(serve_args(host=host, insecure_dev=True, port=9001))
    assert (options["host"], options["port"]) == (host, 9001)


def test_serve_on_a_public_address_exits_with_one_line(capsys) -> None:
    assert main(["serve", "--insecure-dev", "--host", "0.0.0.0"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("enclave: error:") and err.count("\n") == 1


def test_db_upgrade_creates_the_schema(tmp_path, monkeypatch) -> None:
    path = tmp_path / "fresh.db"
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    assert main(["db", "upgrade"]) == 0
    import sqlalchemy

    tables = inspect(sqlalchemy.create_engine(f"sqlite:///{path}")).get_table_names()
    assert {"jobs", "uploads", "alembic_version"} <= set(tables)


def test_bad_settings_are_one_line_errors(monkeypatch, capsys) -> None:
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", "mysql://nope")
    assert main(["db", "upgrade"]) == EXIT_BAD_INPUT
    assert "async driver" in capsys.readouterr().err


def test_openapi_yaml_matches_the_app() -> None:
    committed = (REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == openapi_document(), (
        "openapi.yaml is out of date: run `enclave openapi --output openapi.yaml`"
    )


def test_openapi_documents_problem_details_and_both_job_encodings() -> None:
    import yaml

    document = yaml.safe_load(openapi_document())
    submit = document["paths"]["/jobs"]["post"]
    assert set(submit["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "application/problem+json" in submit["responses"]["429"]["content"]
    assert {"/jobs/{job_id}/result", "/compare", "/readyz", "/metrics"} <= set(document["paths"])


@pytest.mark.slow
def test_enclave_serve_insecure_dev_answers_on_loopback(tmp_path) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(
        ENCLAVE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'enclave.db'}",
        ENCLAVE_STORAGE_DIR=str(tmp_path / "storage"),
        ENCLAVE_SECURITY__AUDIT_PATH=str(tmp_path / "audit.jsonl"),
    )
    enclave = Path(sys.executable).parent / "enclave"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(enclave), "serve", "--insecure-dev", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.1)
        else:
            pytest.fail(f"enclave serve did not come up:\n{log.read_text()}")
        assert response.status_code == 200, response.text
        jobs = httpx.get(f"http://127.0.0.1:{port}/jobs", timeout=5)
        assert jobs.json() == {"items": [], "next_cursor": None}
    finally:
        server.terminate()
        server.wait(timeout=20)
    output = log.read_text()
    assert "INSECURE DEV MODE" in output
    assert (tmp_path / "enclave.db").is_file()  # migrated at start-up


def test_every_reference_in_the_openapi_document_resolves() -> None:
    import yaml

    document = yaml.safe_load(openapi_document())
    schemas = document["components"]["schemas"]

    def references(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from references(value)
        elif isinstance(node, list):
            for item in node:
                yield from references(item)

    found = set(references(document))
    assert "#/components/schemas/JobCreate" in found
    for reference in found:
        assert reference.startswith("#/components/schemas/")
        assert reference.rsplit("/", 1)[-1] in schemas, reference
