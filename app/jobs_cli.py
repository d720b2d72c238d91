"""``enclave jobs submit|status|wait|download``: a running service's jobs from a shell.

Built on the SDK (``enclave_client``). Connection flags fall back to environment variables
here, in the command layer only: ``--url`` ``ENCLAVE_URL``, ``--cert`` ``ENCLAVE_CLIENT_CERT``,
``--key`` ``ENCLAVE_CLIENT_KEY``, ``--ca`` ``ENCLAVE_CA``. Results go to stdout (the job id
after ``submit``, so scripts can capture it), progress to stderr; every failure is one line
and a non-zero exit code.
"""

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, CommandError

if TYPE_CHECKING:
    from enclave_client import EnclaveClient, Job, JobOptions

CONNECTION_VARIABLES = {
    "url": "ENCLAVE_URL",
    "cert": "ENCLAVE_CLIENT_CERT",
    "key": "ENCLAVE_CLIENT_KEY",
    "ca": "ENCLAVE_CA",
}
# Refusals about what the caller sent (exit 2); anything else exits 1.
_BAD_INPUT_STATUSES = frozenset({400, 404, 409, 410, 413, 422})


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    jobs = subparsers.add_parser(
        "jobs",
        help="submit and follow jobs on a running service (mTLS)",
        description="Jobs on a running Enclave service, through the enclave-client SDK.",
    )
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    connection = _connection_parser()

    submit = actions.add_parser("submit", parents=[connection], help="submit a job")
    submit.add_argument("-s", "--source", dest="sources", nargs="+", type=Path, required=True)
    submit.add_argument("-t", "--target", type=Path, required=True)
    submit.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a processing option, named as in `enclave run` (face_selector_mode=one; "
        "lists comma-separated: frame_processors=face_swapper,face_enhancer)",
    )
    submit.add_argument("--idempotency-key", help="repeat a submission safely")
    submit.add_argument("--webhook-url", help="notified when the job ends")
    submit.add_argument("--ttl", type=int, dest="ttl_seconds", help="fail if not started in S s")
    submit.add_argument("--wait", action="store_true", help="wait for the job to end")
    submit.add_argument("-o", "--output", type=Path, help="with --wait: save the result here")
    _add_wait_flags(submit)
    submit.set_defaults(handler=submit_command)

    status = actions.add_parser("status", parents=[connection], help="show a job")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="print the job as JSON")
    status.set_defaults(handler=status_command)

    wait = actions.add_parser("wait", parents=[connection], help="wait for a job to end")
    wait.add_argument("job_id")
    wait.add_argument("-o", "--output", type=Path, help="save the result here when it succeeds")
    _add_wait_flags(wait)
    wait.set_defaults(handler=wait_command)

    download = actions.add_parser("download", parents=[connection], help="save a job's result")
    download.add_argument("job_id")
    download.add_argument("-o", "--output", type=Path, required=True, help="file or directory")
    download.set_defaults(handler=download_command)


def _connection_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("connection")
    group.add_argument("--url", help="the service's base URL (env ENCLAVE_URL)")
    group.add_argument("--cert", type=Path, help="client certificate, PEM (ENCLAVE_CLIENT_CERT)")
    group.add_argument("--key", type=Path, help="client key, PEM (ENCLAVE_CLIENT_KEY)")
    group.add_argument("--ca", type=Path, help="CA bundle of the service (ENCLAVE_CA)")
    group.add_argument(
        "--request-timeout", type=float, default=60.0, help="seconds per request (default 60)"
    )
    return parser


def _add_wait_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, help="give up waiting after S seconds")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")


# --- handlers ---------------------------------------------------------------------------


def submit_command(args: argparse.Namespace) -> int:
    _require_sdk()
    if args.output is not None and not args.wait:
        raise CommandError("--output needs --wait (or use `enclave jobs download`)", EXIT_BAD_INPUT)
    for path in [*args.sources, args.target]:
        if not path.is_file():
            raise CommandError(f"no such input file: {path}", EXIT_BAD_INPUT)
    options = parse_options(args.options)
    with _client(args) as client:
        job = client.submit(
            args.sources,
            args.target,
            options=options,
            idempotency_key=args.idempotency_key,
            webhook_url=args.webhook_url,
            ttl_seconds=args.ttl_seconds,
        )
        print(job.id, flush=True)
        if args.wait:
            _finish(client, job.id, args)
    return EXIT_OK


def status_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.get(_job_id(args.job_id))
    print(json.dumps(job_json(job), indent=2) if args.json else describe(job))
    return EXIT_OK


def wait_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _finish(client, _job_id(args.job_id), args)
    return EXIT_OK


def download_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(client.download(_job_id(args.job_id), args.output))
    return EXIT_OK


def _finish(client: "EnclaveClient", job_id: str, args: argparse.Namespace) -> None:
    """Wait for the job; a failed or canceled job is an error; save the output if asked."""
    job = client.wait(
        job_id,
        timeout=args.timeout,
        poll_interval=args.poll_interval,
        progress_bar=sys.stderr.isatty(),
    )
    if job.state != "succeeded":
        reason = f": {job.error.code}: {job.error.detail}" if job.error else ""
        raise CommandError(f"job {job.id} {job.state}{reason}", EXIT_FAILURE)
    if args.output is not None:
        print(client.download(job, args.output))


# --- pieces -------------------------------------------------------------------------------


def _require_sdk() -> None:
    try:
        import enclave_client  # noqa: F401
    except ImportError:
        raise CommandError(
            "`enclave jobs` needs the SDK: pip install -e ./sdk (package enclave-client)"
        ) from None


@contextmanager
def _client(args: argparse.Namespace) -> Iterator["EnclaveClient"]:
    """An SDK client from the flags (or the environment); SDK errors become one line."""
    _require_sdk()
    from enclave_client import EnclaveClient

    settings = connection_settings(args, os.environ)
    with _sdk_errors():
        try:
            client = EnclaveClient(timeout=args.request_timeout, **settings)
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            raise CommandError(f"cannot use the TLS files: {error}", EXIT_BAD_INPUT) from error
        with client:
            yield client


def connection_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """``base_url``, ``cert``, ``key`` and ``ca`` from the flags, else the environment."""
    values: dict[str, str | None] = {
        name: getattr(args, name) or environ.get(variable) or None
        for name, variable in CONNECTION_VARIABLES.items()
    }
    url = values.pop("url")
    if not url:
        raise CommandError("no service URL: pass --url or set ENCLAVE_URL", EXIT_BAD_INPUT)
    files: dict[str, Path | None] = {}
    for name, value in values.items():
        files[name] = None if value is None else Path(value)
        if value is not None and not Path(value).is_file():
            raise CommandError(f"--{name}: no such file: {value}", EXIT_BAD_INPUT)
    return {"base_url": str(url), **files}


@contextmanager
def _sdk_errors() -> Iterator[None]:
    from enclave_client import EnclaveAPIError, EnclaveError

    try:
        yield
    except EnclaveAPIError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item.get('location', [])[1:])}: {item.get('message')}"
            for item in error.errors
        )
        detail = f"{error.detail} ({problems})" if problems else error.detail
        code = EXIT_BAD_INPUT if error.status in _BAD_INPUT_STATUSES else EXIT_FAILURE
        raise CommandError(f"{error.title}: {detail}", code) from error
    except EnclaveError as error:
        raise CommandError(str(error), EXIT_FAILURE) from error


def _job_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise CommandError(f"{raw!r} is not a job id", EXIT_BAD_INPUT) from None


def parse_options(pairs: Sequence[str]) -> "JobOptions":
    """``NAME=VALUE`` flags as typed ``JobOptions``; each value is read as its field's type
    (lists comma-separated). The service checks the values themselves."""
    from enclave_client import JobOptions

    hints = typing.get_type_hints(JobOptions)
    values: dict[str, Any] = {}
    for pair in pairs:
        name, equals, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not equals or not name:
            raise CommandError(f"--option takes NAME=VALUE, not {pair!r}", EXIT_BAD_INPUT)
        if name not in JobOptions.names():
            known = ", ".join(sorted(JobOptions.names()))
            raise CommandError(f"unknown option {name!r}; options are: {known}", EXIT_BAD_INPUT)
        try:
            values[name] = _typed(hints[name], raw.strip())
        except ValueError as error:
            raise CommandError(f"--option {name}: {error}", EXIT_BAD_INPUT) from error
    return JobOptions(**values)


def _typed(hint: Any, raw: str) -> Any:
    """``raw`` read as ``hint`` (``X | None``, tuples, literals, bool, int, float, str)."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (hint,) = [argument for argument in arguments if argument is not type(None)]
        return _typed(hint, raw)
    if origin is tuple:
        item = arguments[0]
        return tuple(_typed(item, part.strip()) for part in raw.split(",") if part.strip())
    if origin is typing.Literal:
        return _typed(type(arguments[0]), raw)
    return _SCALARS.get(hint, str)(raw)


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValueError(f"{raw!r} is not true or false")
    return lowered in {"true", "1", "yes"}


_SCALARS: dict[Any, Callable[[str], Any]] = {bool: _boolean, int: int, float: float}


def describe(job: "Job") -> str:
    """A job as aligned ``name  value`` lines for a person."""
    stage = f" ({job.stage})" if job.stage and not job.is_terminal else ""
    lines = [
        ("id", job.id),
        ("state", str(job.state)),
        ("progress", f"{job.progress:.0%}{stage}"),
        ("attempts", f"{job.attempts}/{job.max_attempts}"),
        ("created", job.created_at.isoformat()),
    ]
    if job.finished_at is not None:
        lines.append(("finished", job.finished_at.isoformat()))
    if job.error is not None:
        lines.append(("error", f"{job.error.code}: {job.error.detail}"))
    if job.output_url is not None:
        lines.append(("output", f"enclave jobs download {job.id} -o FILE"))
    return "\n".join(f"{name:<9} {value}" for name, value in lines)


def job_json(job: "Job") -> dict[str, Any]:
    """A job as JSON-ready data (times in ISO 8601)."""

    def plain(value: object) -> str:
        return value.isoformat() if isinstance(value, datetime) else str(value)

    document: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(job), default=plain))
    return document
