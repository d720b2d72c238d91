"""The audit trail: hash-chained JSON lines, their sinks, and the request middleware."""

from app.security.audit.chain import ChainHead, VerifyResult, seal, verify_chain
from app.security.audit.middleware import AuditMiddleware
from app.security.audit.sink import AuditSink, build_audit_sink

__all__ = [
    "AuditMiddleware",
    "AuditSink",
    "ChainHead",
    "VerifyResult",
    "build_audit_sink",
    "seal",
    "verify_chain",
]
