"""Service commands: ``enclave serve``, ``enclave worker``, ``enclave db upgrade``,
``enclave openapi``.

``serve`` builds a uvicorn configuration from flags and settings (``server_options``,
pure data, tested) and then runs it: HTTPS with client certificates (``app.security``), or
plain HTTP only with ``--insecure-dev`` and only on loopback.
"""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli import EXIT_BAD_INPUT, EXIT_OK, CommandError
from app.logs import configure_logging

if TYPE_CHECKING:
    from app.security.config import SecuritySettings

INSECURE_WARNING = (
    "\n"
    "  ******************************************************************\n"
    "  *  INSECURE DEV MODE: plain HTTP, no client certificates, every  *\n"
    "  *  request acts as the dev identity. Never expose this server.  *\n"
    "  ******************************************************************\n"
)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--insecure-dev",
        action="store_true",
        help="plain HTTP on loopback with a fixed dev identity (development only)",
    )
    serve.set_defaults(handler=serve_command)

    worker = subparsers.add_parser("worker", help="run a Celery worker (scale-out dispatch)")
    worker.add_argument(
        "--concurrency", type=int, default=None, help="jobs at once (default: settings.workers)"
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve this worker's Prometheus metrics (stage latencies) on this port",
    )
    worker.set_defaults(handler=worker_command)

    database = subparsers.add_parser("db", help="job store administration")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    upgrade = database_commands.add_parser("upgrade", help="apply pending migrations")
    upgrade.set_defaults(handler=db_upgrade_command)

    openapi = subparsers.add_parser("openapi", help="print the API's OpenAPI document (YAML)")
    openapi.add_argument("--output", type=Path, default=None, help="write here, not stdout")
    openapi.set_defaults(handler=openapi_command)


def server_options(
    args: argparse.Namespace, security: "SecuritySettings | None" = None
) -> dict[str, Any]:
    """uvicorn keyword arguments for ``serve``: HTTPS with client certificates (``security``),
    or plain HTTP on loopback only with ``--insecure-dev``."""
    from app.security.config import SecuritySettings
    from app.security.errors import TlsConfigurationError
    from app.security.serving import uvicorn_options

    try:
        options = uvicorn_options(
            security or SecuritySettings(), args.host, args.port, args.insecure_dev
        )
    except TlsConfigurationError as error:
        raise CommandError(str(error), EXIT_BAD_INPUT) from error
    return {**options, "log_config": None}


def load_settings(**overrides: Any) -> "Any":
    from pydantic import ValidationError

    from app.settings import Settings

    try:
        return Settings(**overrides)
    except (ValidationError, ValueError) as exc:
        raise CommandError(f"invalid settings: {exc}", EXIT_BAD_INPUT) from exc


def serve_command(args: argparse.Namespace) -> int:
    settings = load_settings(insecure_dev=args.insecure_dev)
    options = server_options(args, settings.security)
    import uvicorn

    from app.main import create_app

    if args.insecure_dev:
        print(INSECURE_WARNING, file=sys.stderr, flush=True)
    configure_logging()  # only once serving is certain: it takes over the root logger
    uvicorn.run(create_app(settings), **options)
    return EXIT_OK


def worker_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging()
    from app.jobs.celery_app import create_celery

    concurrency = args.concurrency or settings.workers
    on_report = None
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        from app.metrics import ServiceMetrics

        metrics = ServiceMetrics()
        start_http_server(args.metrics_port, registry=metrics.registry)
        on_report = metrics.observe
    app = create_celery(settings, on_report=on_report)
    # Threads, not prefork: the broker connection keeps its heartbeat while a long video
    # runs, and killing the process (or the machine) returns every unacked job to the queue.
    app.worker_main(
        argv=[
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            "--prefetch-multiplier=1",
            f"--queues={settings.job_queue}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return EXIT_OK


def db_upgrade_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    from app.db import upgrade_database

    upgrade_database(settings.database_url)
    print("job store is at the latest migration")
    return EXIT_OK


def openapi_document() -> str:
    """The API's OpenAPI document as YAML, independent of any deployment's settings."""
    import yaml

    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings(insecure_dev=True))
    return str(yaml.safe_dump(app.openapi(), sort_keys=False, allow_unicode=True, width=100))


def openapi_command(args: argparse.Namespace) -> int:
    document = openapi_document()
    if args.output is None:
        sys.stdout.write(document)
    else:
        args.output.write_text(document, encoding="utf-8")
    return EXIT_OK
