"""The audit log's hash chain: how a line is sealed, and how a sequence of lines is verified.

Every line is one canonical JSON object (sorted keys, no spaces, ASCII) carrying

- ``seq``: 1, 2, 3, … (a removed, inserted or reordered line breaks the sequence),
- ``prev``: the SHA-256 of the previous line's exact bytes (the genesis value for line 1),
- ``hash``: the SHA-256 of the line's own canonical JSON without ``hash``.

A head record kept next to the log (``<file>.head``, or ``head.json`` in the object store)
holds the last ``seq`` and the SHA-256 of the last line, so cutting lines off the end is
detected too. A chain without a secret proves integrity against edits, not against an
attacker who rewrites the whole file and its head: ship the lines off the host (the object
store sink, a versioned bucket) for that.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainHead:
    """Where a chain ends: the last line's ``seq`` and the SHA-256 of that line."""

    seq: int
    digest: str

    def to_json(self) -> str:
        return canonical_json({"seq": self.seq, "digest": self.digest})

    @classmethod
    def from_json(cls, text: str) -> "ChainHead":
        data = json.loads(text)
        return cls(seq=int(data["seq"]), digest=str(data["digest"]))


EMPTY_HEAD = ChainHead(seq=0, digest=GENESIS)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    lines_checked: int
    bad_line: int | None = None
    reason: str | None = None
    head: ChainHead = EMPTY_HEAD


def canonical_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def line_digest(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def seal(fields: Mapping[str, Any], after: ChainHead) -> tuple[str, ChainHead]:
    """The line that follows ``after`` with ``fields``, and the chain's new head."""
    body = {**fields, "seq": after.seq + 1, "prev": after.digest}
    body.pop("hash", None)
    body["hash"] = hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
    line = canonical_json(body)
    return line, ChainHead(seq=after.seq + 1, digest=line_digest(line))


def _line_problem(line: str, expected: ChainHead) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return "not a JSON line (edited or truncated)"
    if not isinstance(record, dict):
        return "not a JSON object (edited)"
    if canonical_json(record) != line:
        return "not in the form the writer produces (edited)"
    stored_hash = record.pop("hash", None)
    if stored_hash != hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest():
        return "its content does not match its hash (edited)"
    seq = record.get("seq")
    if seq != expected.seq + 1:
        return (
            f"seq {seq} where {expected.seq + 1} was expected "
            "(a line was removed, inserted or reordered)"
        )
    if record.get("prev") != expected.digest:
        return "prev does not match the line before it (a line before it was changed or replaced)"
    return None


def verify_chain(
    lines: Iterable[str], head: ChainHead | None = None, start: ChainHead = EMPTY_HEAD
) -> VerifyResult:
    """Check every line against the one before it, and the last one against ``head``.

    ``start`` is the head the first line follows (genesis for a whole log). Line numbers
    in the result are 1-based positions in ``lines``.
    """
    current = start
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        problem = _line_problem(line, current)
        if problem is not None:
            return VerifyResult(False, number - 1, bad_line=number, reason=problem, head=current)
        current = ChainHead(seq=current.seq + 1, digest=line_digest(line))
    if head is not None and head != current:
        if head.seq > current.seq:
            bad_line = number + 1
            reason = (
                f"the log ends at seq {current.seq} but its head records seq {head.seq} "
                "(lines were removed from the end)"
            )
        elif head.seq < current.seq:
            bad_line = max(1, head.seq + 1 - start.seq)
            reason = f"lines after seq {head.seq}, where the head says the log ends, were added"
        else:
            bad_line = number
            reason = "the last line does not match the head (edited)"
        return VerifyResult(False, number, bad_line=bad_line, reason=reason, head=current)
    return VerifyResult(True, number, head=current)
