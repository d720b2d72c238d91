"""TLS for the service (mutual: our certificate, its CA) and for object-storage URLs.

The service authenticates callers by client certificate, so the client certificate goes to
the service's host only. Presigned upload and download URLs point at object storage, carry
their own signature, and are fetched with ordinary server verification and no client
certificate.
"""

import os
import ssl

PathLike = str | os.PathLike[str]


def service_ssl_context(
    *,
    cert: PathLike | None = None,
    key: PathLike | None = None,
    ca: PathLike | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> ssl.SSLContext:
    """The context for connections to the service: ``ssl_context`` as given, or one that
    trusts ``ca`` (the system's roots without it) and presents ``cert``/``key``."""
    if ssl_context is not None:
        if cert is not None or key is not None or ca is not None:
            raise ValueError("pass either ssl_context or cert/key/ca, not both")
        return ssl_context
    if key is not None and cert is None:
        raise ValueError("a client key needs its certificate (cert=)")
    context = ssl.create_default_context(cafile=os.fspath(ca) if ca is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        context.load_cert_chain(os.fspath(cert), os.fspath(key) if key is not None else None)
    return context


def storage_ssl_context(verify: ssl.SSLContext | PathLike | bool) -> ssl.SSLContext | bool:
    """Verification for presigned URLs: the system's roots (``True``), a CA file, a context,
    or ``False`` (development object stores on plain HTTP need no TLS at all)."""
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    return ssl.create_default_context(cafile=os.fspath(verify))
