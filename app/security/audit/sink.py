"""What every audit sink offers, and how settings choose one."""

from collections.abc import Mapping
from typing import Any, Protocol

from app.security.config import AuditSinkKind, SecuritySettings
from app.storage.base import Storage


class AuditSink(Protocol):
    async def open(self) -> None:
        """Resume the chain where the sink's stored log ends."""

    async def write(self, fields: Mapping[str, Any]) -> None:
        """Seal ``fields`` as the chain's next line and store it (raises ``AuditError``)."""

    async def close(self) -> None: ...


def build_audit_sink(settings: SecuritySettings, storage: Storage | None = None) -> AuditSink:
    """The sink ``settings.audit_sink`` names (the object store needs ``storage``)."""
    if settings.audit_sink is AuditSinkKind.OBJECT_STORE:
        from app.security.audit.object_sink import ObjectStoreAuditSink

        if storage is None:
            raise ValueError("the object-store audit sink needs the service's storage")
        return ObjectStoreAuditSink(
            storage,
            prefix=settings.audit_prefix,
            batch_lines=settings.audit_batch_lines,
            flush_interval=settings.audit_flush_interval,
        )
    from app.security.audit.file_sink import FileAuditSink

    return FileAuditSink(settings.audit_path, settings.audit_fsync, settings.audit_fsync_interval)
