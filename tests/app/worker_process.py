"""``enclave worker`` as a real subprocess for the Celery tests."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.settings import Settings


def settings_environment(settings: Settings) -> dict[str, str]:
    """The ENCLAVE_* variables that give a subprocess the same settings."""
    values = settings.model_dump(mode="json")
    secrets = {"broker_url": settings.broker_url.get_secret_value()}
    for name in ("upload_secret", "s3_secret_access_key", "webhook_secret"):
        secret = getattr(settings, name)
        if secret is not None:
            secrets[name] = secret.get_secret_value()
    values.update(secrets)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ENCLAVE_")}
    for name, value in values.items():
        if value is None or isinstance(value, (list, dict)):
            continue
        env[f"ENCLAVE_{name.upper()}"] = str(value)
    env["ENCLAVE_EXECUTION_PROVIDERS"] = '["cpu"]'
    return env


@contextmanager
def worker_process(
    settings: Settings, log: Path, *extra_args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``enclave worker``; stop it (or find it already killed) on exit."""
    enclave = Path(sys.executable).parent / "enclave"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(enclave), "worker", *extra_args],
            env=settings_environment(settings),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """kill -9: no clean-up, no ack; the broker and the lease must recover the job."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(0.1)
