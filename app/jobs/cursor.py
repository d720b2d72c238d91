"""Opaque pagination cursors over ``(created_at, id)``, the order jobs are listed in."""

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from app.errors import InvalidJobRequestError
from app.jobs.models import Job


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at = datetime.fromisoformat(raw[0])
        job_id = uuid.UUID(raw[1])
    except (binascii.Error, ValueError, TypeError, IndexError, KeyError) as exc:
        raise InvalidJobRequestError("cursor is not one this service issued") from exc
    if created_at.tzinfo is None:
        raise InvalidJobRequestError("cursor is not one this service issued")
    return created_at, job_id
