"""``POST /jobs`` over mTLS: the real service against a bare FastAPI endpoint, same TLS server.

    python -m bench.api            # 50 and 200 concurrent clients, 15 s each
    python -m bench.api --quick    # 8 clients, 1 s (the smoke test)

Both servers run in their own process, one uvicorn worker each, built with
``app.security.serving.server_config`` from the same security settings: the same
certificate, CA, CRL, TLS context and HTTP protocol class. The service is
``app.main.create_app`` in its default deployment (SQLite job store, local storage,
in-process dispatch, audit log fsynced per line) with a pipeline stand-in that copies the
target, so its one worker process drains jobs as they arrive; the rate limit and queue
bound are lifted so that every request is a submission. The bare endpoint reads the body
and returns an id. Each client holds one keep-alive mTLS connection (handshake before
timing) and submits multipart jobs (two 16×16 PNGs) back to back. "Lost" counts requests
that did not get 202, plus 202 answers whose job is not in the store afterwards.
"""

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import socket
import sqlite3
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.report import header, ratio_line, table
from tests.app.pipeline_doubles import png_bytes

CLIENT = "bench-client"


@dataclass
class Load:
    """What the clients saw against one server at one concurrency."""

    latencies_ms: list[float] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # every 202's job id, warm-up included
    measured: int = 0  # 202 answers to requests sent inside the measured window
    refused: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    server_cpu_s: float = 0.0  # the server process and its children (workers), in the window

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / max(1, self.measured)

    @property
    def sent(self) -> int:
        return len(self.latencies_ms) + sum(self.refused.values())

    @property
    def throughput(self) -> float:
        return self.measured / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def make_pki(directory: Path) -> None:
    from app.security import certs

    pki = certs.init_ca(directory)
    certs.issue_server_cert(pki)
    certs.issue_client_cert(pki, CLIENT, organizational_unit="submitter")


def security_settings(pki_dir: Path, audit_path: Path) -> object:
    from app.security.certs import DevPki
    from app.security.config import SecuritySettings
    from app.security.roles import Role

    pki = DevPki(pki_dir)
    return SecuritySettings.model_validate(
        {
            "tls_cert": pki.server_cert,
            "tls_key": pki.server_key,
            "tls_ca": pki.ca_cert,
            "tls_crl": pki.crl,
            "roles_by_ou": {"submitter": [Role.SUBMITTER]},
            "rate_limit_per_second": 1_000_000.0,
            "rate_limit_burst": 1_000_000,
            "audit_path": audit_path,
        }
    )


def serve(
    kind: str,
    pki_dir: Path,
    work: Path,
    sock: socket.socket,
    database_url: str,
    job_queue: str | None,
    storage_dir: Path,
) -> None:
    """Child process: the service (``kind="enclave"``) or the bare endpoint, until killed."""
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from app.security.serving import server_config

    security = security_settings(pki_dir, work / "audit.jsonl")
    if kind == "enclave":
        from app.db import upgrade_database
        from app.main import create_app
        from app.settings import Settings
        from tests.app.pipeline_doubles import copy_target

        if not database_url.startswith("sqlite"):
            upgrade_database(database_url)  # the service migrates SQLite itself, not PostgreSQL
        settings = Settings(
            database_url=database_url,
            storage_dir=storage_dir,
            upload_secret="u" * 32,
            max_queued_jobs=1_000_000,
            **celery_settings(job_queue),
            security=security,
        )
        app = create_app(settings, process_file=copy_target)
    else:
        app = FastAPI()

        @app.post("/jobs", status_code=202)
        async def submit(request: Request) -> JSONResponse:
            await request.body()
            return JSONResponse({"id": str(uuid.uuid4())}, status_code=202)

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

    config = server_config(app, security, "127.0.0.1", 0, log_level="critical")  # type: ignore[arg-type]
    uvicorn.Server(config).run(sockets=[sock])


def client_context(pki_dir: Path) -> ssl.SSLContext:
    from app.security.certs import DevPki

    pki = DevPki(pki_dir)
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(pki.client_cert(CLIENT), pki.client_key(CLIENT))
    return context


async def wait_ready(url: str, context: ssl.SSLContext, patience_s: float = 120.0) -> None:
    deadline = time.monotonic() + patience_s
    async with httpx.AsyncClient(base_url=url, verify=context) as client:
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server at {url} did not come up")
            await asyncio.sleep(0.2)


async def apply_load(
    url: str,
    context: ssl.SSLContext,
    clients: int,
    seconds: float,
    rate: float | None = None,
    *,
    warmup: float = 0.0,
    on_measuring: Callable[[], None] = lambda: None,
) -> Load:
    """``clients`` keep-alive connections submitting jobs for ``warmup`` + ``seconds``.

    Without ``rate`` each client sends its next request as soon as it has an answer (closed
    loop: the throughput the server can take). With ``rate`` (requests per second over all
    clients) sends are scheduled on a fixed timetable, and latency is measured from the
    scheduled time, so a server that falls behind is charged for the queue it causes.
    Only requests sent after the warm-up count towards throughput and latency (the same
    load runs through it, so the server is in its steady state when measuring starts);
    ``on_measuring`` is called as the measured window opens. Every 202 is kept for the
    lost-submission check.
    """
    files = [
        ("source", ("source.png", png_bytes(1), "image/png")),
        ("target", ("target.png", png_bytes(2), "image/png")),
    ]
    load = Load()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    pool = [
        httpx.AsyncClient(base_url=url, verify=context, limits=limits, timeout=60.0)
        for _ in range(clients)
    ]
    try:
        await asyncio.gather(*(client.get("/healthz") for client in pool))  # handshakes
        started = time.perf_counter()
        measuring_from = started + warmup
        deadline = measuring_from + seconds

        async def open_window() -> None:
            await asyncio.sleep(max(0.0, measuring_from - time.perf_counter()))
            on_measuring()

        async def submit_until_deadline(index: int, client: httpx.AsyncClient) -> None:
            for turn in itertools.count():
                if rate is None:
                    sent = time.perf_counter()
                else:
                    sent = started + (index + turn * clients) / rate
                    if sent >= deadline:
                        return  # past the window: do not sleep into it
                    await asyncio.sleep(max(0.0, sent - time.perf_counter()))
                if sent >= deadline or time.perf_counter() >= deadline:
                    return
                measured = sent >= measuring_from
                try:
                    response = await client.post("/jobs", files=files)
                except httpx.HTTPError as error:
                    name = type(error).__name__
                    load.refused[name] = load.refused.get(name, 0) + 1
                    continue
                if response.status_code == 202:
                    load.accepted.append(response.json()["id"])
                    if measured:
                        load.measured += 1
                        load.latencies_ms.append((time.perf_counter() - sent) * 1000)
                else:
                    code = str(response.status_code)
                    load.refused[code] = load.refused.get(code, 0) + 1

        await asyncio.gather(
            open_window(), *(submit_until_deadline(i, client) for i, client in enumerate(pool))
        )
        load.seconds = time.perf_counter() - measuring_from
    finally:
        await asyncio.gather(*(client.aclose() for client in pool))
    return load


def celery_settings(job_queue: str | None) -> dict[str, object]:
    """Settings for Celery dispatch to ``job_queue`` on the local RabbitMQ (``None``:
    the default in-process workers)."""
    if job_queue is None:
        return {}
    from tests.app.services import BROKER_URL

    return {"dispatch": "celery", "broker_url": BROKER_URL, "job_queue": job_queue}


def queued_messages(job_queue: str) -> int:
    """How many job messages wait in ``job_queue`` (no worker consumes it); then drop it."""
    from kombu import Connection

    from tests.app.services import BROKER_URL

    with Connection(BROKER_URL) as connection:
        channel = connection.default_channel
        _, count, _ = channel.queue_declare(queue=job_queue, passive=True)
        channel.queue_delete(queue=job_queue)
    return int(count)


def server_cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) of the server process and every process it started."""
    import psutil

    if pid is None:
        return 0.0
    server = psutil.Process(pid)
    total = 0.0
    for process in [server, *server.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def stored_job_ids(database_url: str) -> set[str]:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split(":///", 1)[1]) as connection:
            rows = connection.execute("SELECT id FROM jobs").fetchall()
        return {str(uuid.UUID(hex=str(row[0]))) for row in rows}
    import asyncpg  # type: ignore[import-untyped]

    async def fetch() -> list[object]:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            return [row["id"] for row in await connection.fetch("SELECT id FROM jobs")]
        finally:
            await connection.close()

    return {str(value) for value in asyncio.run(fetch())}


@dataclass(frozen=True)
class Scenario:
    kind: str  # "bare" or "enclave"
    clients: int
    rate: float | None  # requests per second offered (open loop), None: closed loop

    @property
    def load_label(self) -> str:
        return "closed loop" if self.rate is None else f"{self.rate:.0f} req/s offered"


def measure(
    scenario: Scenario,
    seconds: float,
    warmup: float,
    pki_dir: Path,
    root: Path,
    database: str,
    dispatch: str,
    storage_root: Path | None = None,
) -> Load:
    """Start a fresh server, put it under ``scenario``'s load, stop it; check the store.

    The service's objects go under ``storage_root`` when given (another volume), else
    beside its database.
    """
    work = root / f"{scenario.kind}-{scenario.clients}-{scenario.rate or 'closed'}"
    work.mkdir(parents=True)
    # Kept until the whole run ends, like the rest of the run's files: removing thousands of
    # objects between scenarios would load the file system under the next one.
    storage = (storage_root or work) / work.name
    if database == "postgresql":
        from tests.app.services import create_postgres_database, drop_postgres_database

        database_url = create_postgres_database()
    else:
        database_url = f"sqlite+aiosqlite:///{work / 'enclave.db'}"
    try:
        job_queue = f"enclave.bench.{uuid.uuid4().hex[:12]}" if dispatch == "celery" else None
        return _measure(scenario, seconds, warmup, pki_dir, work, database_url, job_queue, storage)
    finally:
        if database == "postgresql":
            drop_postgres_database(database_url)


def _measure(
    scenario: Scenario,
    seconds: float,
    warmup: float,
    pki_dir: Path,
    work: Path,
    database_url: str,
    job_queue: str | None,
    storage_dir: Path,
) -> Load:
    kind = scenario.kind
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    process = multiprocessing.get_context("spawn").Process(
        target=serve,
        args=(
            kind,
            pki_dir,
            work,
            sock,
            database_url,
            job_queue,
            storage_dir,
        ),  # not daemonic: the service spawns workers
    )
    process.start()
    print(f"# {kind} server pid {process.pid} at {url}", file=sys.stderr, flush=True)
    context = client_context(pki_dir)
    try:
        asyncio.run(wait_ready(url, context))
        cpu_at_start: list[float] = []
        load = asyncio.run(
            apply_load(
                url,
                context,
                scenario.clients,
                seconds,
                scenario.rate,
                warmup=warmup,
                on_measuring=lambda: cpu_at_start.append(server_cpu_seconds(process.pid)),
            )
        )
        load.server_cpu_s = server_cpu_seconds(process.pid) - cpu_at_start[0]
    finally:
        process.terminate()
        process.join(timeout=30)
        sock.close()
    if kind == "enclave":
        missing = set(load.accepted) - stored_job_ids(database_url)
        if missing:
            load.refused["202 but not stored"] = len(missing)
        if job_queue is not None:
            unqueued = len(load.accepted) - queued_messages(job_queue)
            if unqueued > 0:
                load.refused["202 but not on the broker"] = unqueued
    return load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 clients, 1 s per server")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per row")
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of the same load before measuring (worker processes started, caches "
        "warm); not counted",
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="also offer this many req/s (open loop) at the highest concurrency; 0: skip. "
        "Keep each client's interval (clients / rate) under uvicorn's 5 s keep-alive timeout, "
        "or sends race the server closing the idle connection",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the service's job store: SQLite (default deployment) or the local PostgreSQL",
    )
    parser.add_argument(
        "--dispatch",
        choices=["inprocess", "celery"],
        default="inprocess",
        help="inprocess (default deployment: this host's worker processes run every job as "
        "it arrives, sharing the cores) or celery (an API host: jobs are published to the "
        "local RabbitMQ for GPU workers elsewhere; the bench checks each one is queued)",
    )
    parser.add_argument(
        "--storage-root",
        type=Path,
        help="put the service's local storage under this directory (e.g. /dev/shm, to "
        "separate the cost of the file system holding it); default: beside its database",
    )
    parser.add_argument(
        "--only",
        choices=["bare", "enclave"],
        help="one server only (attach py-spy to the pid printed on stderr); prints no ratio",
    )
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    warmup = 0.5 if args.quick else args.warmup
    concurrency = [8] if args.quick else args.clients
    with contextlib.ExitStack() as cleanup:
        root = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="enclave-bench-")))
        storage_root = None
        if args.storage_root is not None:
            storage_root = Path(
                cleanup.enter_context(
                    tempfile.TemporaryDirectory(prefix="enclave-bench-", dir=args.storage_root)
                )
            )
        make_pki(root / "pki")
        kinds = [args.only] if args.only else ["bare", "enclave"]
        scenarios = [Scenario(kind, clients, None) for clients in concurrency for kind in kinds]
        if args.rate > 0 and not args.quick:
            scenarios += [Scenario(kind, max(concurrency), args.rate) for kind in kinds]
        results = {
            scenario: measure(
                scenario,
                seconds,
                warmup,
                root / "pki",
                root,
                args.database,
                args.dispatch,
                storage_root,
            )
            for scenario in scenarios
        }
    header(
        "POST /jobs over mTLS (TLS 1.3, client certificates, keep-alive) on loopback",
        [
            f"{seconds:.0f} s per row after {warmup:.0f} s of warm-up, each on a fresh server; "
            "closed loop: each client sends when answered; offered: a fixed timetable, "
            "latency from the scheduled time",
            "one uvicorn worker per server; load generator: httpx, one process, one "
            "keep-alive connection per client",
            f"enclave: create_app ({args.database} job store, local storage "
            f"{f'under {args.storage_root}' if args.storage_root else 'beside it'}, "
            f"{args.dispatch} dispatch, audit fsynced), pipeline stand-in, rate limit lifted; "
            "bare: FastAPI route, body read",
        ],
    )
    rows = []
    for scenario, load in results.items():
        lost = sum(load.refused.values())
        rows.append(
            [
                scenario.kind,
                scenario.clients,
                scenario.load_label,
                len(load.accepted),
                f"{load.throughput:.0f}",
                f"{load.percentile(0.5):.1f}",
                f"{load.percentile(0.99):.1f}",
                f"{load.cpu_ms_per_request:.2f}",
                lost,
                ", ".join(f"{why}: {count}" for why, count in load.refused.items()) or "-",
            ]
        )
    columns = [
        "server",
        "clients",
        "load",
        "accepted",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
        "lost",
        "why",
    ]
    table(columns, rows)
    if args.only:
        return 0
    top = max(concurrency)
    for scenario, load in results.items():
        if scenario.rate is not None and scenario.kind == "enclave":
            print(
                f"# enclave p99 at {scenario.clients} clients, {scenario.load_label}: "
                f"{load.percentile(0.99):.1f} ms (target < 50 ms)"
            )
    ratio = (
        results[Scenario("enclave", top, None)].throughput
        / results[Scenario("bare", top, None)].throughput
    )
    lost_total = sum(sum(load.refused.values()) for load in results.values())
    print(f"# lost submissions: {lost_total}")
    ratio_line(f"enclave/bare POST /jobs throughput at {top} clients", ratio, ">= 0.5x")
    return 0  # lost submissions are a result, reported above, not a failure of the bench


if __name__ == "__main__":
    raise SystemExit(main())
