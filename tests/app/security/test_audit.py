"""The audit trail: one chained line per request, and `enclave audit verify` catching tampering."""

import asyncio
import errno
import json
import shutil
import subprocess
import sys

import pytest

from app.cli import main as enclave
from app.security.audit import file_sink
from app.security.audit.chain import ChainHead, seal, verify_chain
from app.security.audit.file_sink import FileAuditSink, head_path
from app.security.errors import AuditError
from tests.app.security.conftest import audit_lines, base_settings
from tests.app.security.live_server import mtls_client, serve

REQUESTS_IN_RUN = 7


@pytest.fixture(scope="module")
def real_run(pki, tmp_path_factory):
    """The audit log of a short real session: allowed, denied and failed requests."""
    log = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serve(base_settings(pki), log) as url:
        with mtls_client(pki, "alice", url) as alice:
            alice.get("/whoami")
            job_id = alice.post("/jobs").json()["id"]
            alice.get("/whoami", params={"X-Amz-Signature": "s3cr3t-signature"})
        with mtls_client(pki, "rita", url) as rita:
            rita.post("/jobs")
            rita.get(f"/jobs/{job_id}")
        with mtls_client(pki, "audrey", url) as audrey:
            audrey.get(f"/jobs/{job_id}")
            audrey.get("/no/such/route?token=s3cr3t-token")
    assert len(log.read_text().splitlines()) == REQUESTS_IN_RUN
    return log


def verify(log, capsys) -> tuple[int, str]:
    code = enclave(["audit", "verify", str(log)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_every_request_is_one_line_with_the_agreed_fields(real_run):
    lines = audit_lines(real_run)
    assert [line["outcome"] for line in lines] == [
        "allowed",
        "allowed",
        "allowed",
        "denied",
        "allowed",  # rita's 404: not hers, and nothing leaked
        "allowed",
        "allowed",
    ]
    assert [line["route"] for line in lines] == [
        "/whoami",
        "/jobs",
        "/whoami",
        "/jobs",
        "/jobs/{job_id}",
        "/jobs/{job_id}",
        None,  # no route matched: the raw path is not written
    ]
    for line in lines:
        assert set(line) >= {
            "time", "request_id", "identity", "source", "method", "route", "job_id",
            "outcome", "status", "prev", "seq", "hash",
        }  # fmt: skip
    assert len({line["request_id"] for line in lines}) == REQUESTS_IN_RUN


def test_no_query_string_or_secret_reaches_the_audit_log(real_run):
    text = real_run.read_text()
    assert "s3cr3t" not in text
    assert "X-Amz-Signature" not in text


def test_verify_passes_on_a_real_run(real_run, capsys):
    code, output = verify(real_run, capsys)
    assert code == 0
    assert f"ok: {REQUESTS_IN_RUN} lines" in output


def test_the_enclave_command_verifies_from_a_shell(real_run):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "audit", "verify", str(real_run)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _edit(lines, index):
    record = json.loads(lines[index])
    record["identity"] = "someone-else"
    lines[index] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return index + 1


def _remove(lines, index):
    del lines[index]
    return index + 1


def _swap(lines, index):
    other = index + 1 if index + 1 < len(lines) else index - 1
    lines[index], lines[other] = lines[other], lines[index]
    return min(index, other) + 1


def _duplicate(lines, index):
    lines.insert(index + 1, lines[index])
    return index + 2


@pytest.mark.parametrize("index", range(REQUESTS_IN_RUN))
@pytest.mark.parametrize("tamper", [_edit, _remove, _swap, _duplicate])
def test_verify_fails_at_the_first_bad_line_after_any_single_line_change(
    real_run, tmp_path, capsys, tamper, index
):
    lines = real_run.read_text().splitlines()
    expected_bad_line = tamper(lines, index)
    log = tmp_path / "audit.jsonl"
    log.write_text("\n".join(lines) + "\n")
    shutil.copy(head_path(real_run), head_path(log))
    code, output = verify(log, capsys)
    assert code == 1
    assert f"{log} line {expected_bad_line}:" in output


def test_a_whitespace_only_edit_is_caught(real_run, tmp_path, capsys):
    lines = real_run.read_text().splitlines()
    lines[2] = lines[2].replace('"status":', '"status": ')
    log = tmp_path / "audit.jsonl"
    log.write_text("\n".join(lines) + "\n")
    shutil.copy(head_path(real_run), head_path(log))
    code, output = verify(log, capsys)
    assert code == 1
    assert f"{log} line 3: not in the form the writer produces" in output


async def test_file_sink_resumes_the_chain_after_a_restart(tmp_path):
    log = tmp_path / "audit.jsonl"
    first = FileAuditSink(log)
    await first.write({"event": 1})
    await first.close()
    second = FileAuditSink(log)
    await second.open()
    await second.write({"event": 2})
    await second.close()
    lines = log.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2]
    head = ChainHead.from_json(head_path(log).read_text())
    assert verify_chain(lines, head=head).ok


async def test_two_writers_on_one_file_keep_one_chain(tmp_path):
    """Two sinks stand in for two worker processes sharing the file."""
    log = tmp_path / "audit.jsonl"
    first, second = FileAuditSink(log), FileAuditSink(log)
    for number in range(6):
        await (first if number % 2 else second).write({"event": number})
    lines = log.read_text().splitlines()
    head = ChainHead.from_json(head_path(log).read_text())
    assert verify_chain(lines, head=head).ok
    assert head.seq == 6


async def test_concurrent_writes_share_batches_and_each_returns_after_its_line(
    tmp_path, monkeypatch
):
    """Group commit: 60 requests at once take a few writes, not 60, and none returns
    before its own line is in the file."""
    log = tmp_path / "audit.jsonl"
    sink = FileAuditSink(log)
    batches: list[int] = []
    write_batch = sink.write_batch_sync

    def counting(batch):
        batches.append(len(batch))
        write_batch(batch)

    monkeypatch.setattr(sink, "write_batch_sync", counting)

    async def request(number: int) -> None:
        await sink.write({"event": number})
        assert f'"event":{number},' in log.read_text()

    await asyncio.gather(*(request(number) for number in range(60)))
    await sink.close()
    lines = log.read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == list(range(60))
    assert verify_chain(lines, head=ChainHead.from_json(head_path(log).read_text())).ok
    assert sum(batches) == 60
    assert len(batches) < 10, batches


async def test_a_failed_batch_fails_every_request_in_it(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    sink = FileAuditSink(log)
    await sink.write({"event": 0})

    def disk_full(descriptor: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_sink.os, "write", disk_full)
    results = await asyncio.gather(
        *(sink.write({"event": number}) for number in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, AuditError) for result in results), results
    monkeypatch.undo()
    await sink.write({"event": 5})  # the sink recovers once the disk has room
    lines = log.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2]


async def test_file_sink_refuses_to_resume_a_log_cut_short(tmp_path):
    log = tmp_path / "audit.jsonl"
    sink = FileAuditSink(log)
    for number in range(3):
        await sink.write({"event": number})
    await sink.close()
    log.write_text("\n".join(log.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(AuditError, match="lines were removed"):
        await FileAuditSink(log).open()


async def test_audit_log_file_is_private(tmp_path):
    log = tmp_path / "audit.jsonl"
    await FileAuditSink(log).write({"event": 1})
    assert log.stat().st_mode & 0o777 == 0o600


def test_verify_chain_reports_a_missing_head_line_and_accepts_a_continued_chain():
    first, head1 = seal({"n": 1}, ChainHead(0, "0" * 64))
    second, head2 = seal({"n": 2}, head1)
    assert verify_chain([first, second], head=head2).ok
    assert verify_chain([second], start=head1, head=head2).ok
    cut = verify_chain([first], head=head2)
    assert (cut.ok, cut.bad_line) == (False, 2)


class _FailingSink:
    async def open(self):
        pass

    async def write(self, fields):
        raise AuditError("disk full")

    async def close(self):
        pass


def test_no_response_leaves_without_its_audit_line(pki, tmp_path):
    """When the audit line cannot be written, the caller gets 503, not the response."""
    from fastapi import FastAPI

    from app.security.middleware import install_security
    from app.security.serving import server_config
    from tests.app.security.live_server import running

    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, str]:
        return {"secret": "result"}

    settings = base_settings(pki)
    install_security(app, settings, _FailingSink())
    config = server_config(app, settings, "127.0.0.1", 0, log_level="critical")
    with running(config) as url, mtls_client(pki, "alice", url) as alice:
        response = alice.get("/work")
    assert response.status_code == 503
    assert "result" not in response.text
