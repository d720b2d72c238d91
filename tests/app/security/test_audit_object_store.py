"""Audit lines shipped to the object store in batches, resumable, verifiable end to end."""

import json
from datetime import UTC, datetime

from app.security.audit.chain import ChainHead, verify_chain
from app.security.audit.object_sink import ObjectStoreAuditSink
from app.storage.local import LocalStorage


def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", upload_secret=b"x" * 32)


def day() -> datetime:
    return datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


async def test_batches_land_under_audit_date_seq_and_verify_as_one_chain(tmp_path):
    store = storage(tmp_path)
    sink = ObjectStoreAuditSink(store, batch_lines=2, clock=day)
    for number in range(5):
        await sink.write({"event": number})
    await sink.close()  # flushes the last, partial batch
    batch_dir = store.root / "audit" / "2026-11-25"
    batches = sorted(path.name for path in batch_dir.iterdir())
    assert batches == ["000000000001.jsonl", "000000000003.jsonl", "000000000005.jsonl"]
    lines = [line for name in batches for line in (batch_dir / name).read_text().splitlines()]
    head = ChainHead.from_json((store.root / "audit" / "head.json").read_text())
    assert verify_chain(lines, head=head).ok
    assert [json.loads(line)["event"] for line in lines] == [0, 1, 2, 3, 4]


async def test_a_restarted_writer_continues_the_chain_from_the_head(tmp_path):
    store = storage(tmp_path)
    first = ObjectStoreAuditSink(store, batch_lines=10, clock=day)
    await first.write({"event": "before"})
    await first.close()
    second = ObjectStoreAuditSink(store, batch_lines=10, clock=day)
    await second.write({"event": "after"})
    await second.close()
    batch_dir = store.root / "audit" / "2026-11-25"
    lines = [line for path in sorted(batch_dir.iterdir()) for line in path.read_text().splitlines()]
    head = ChainHead.from_json((store.root / "audit" / "head.json").read_text())
    assert [json.loads(line)["seq"] for line in lines] == [1, 2]
    assert verify_chain(lines, head=head).ok


async def test_nothing_is_shipped_before_a_batch_fills_or_the_sink_closes(tmp_path):
    store = storage(tmp_path)
    sink = ObjectStoreAuditSink(store, batch_lines=3, clock=day)
    await sink.write({"event": 1})
    assert not await store.exists("audit/head.json")
    await sink.close()
    assert await store.exists("audit/head.json")
