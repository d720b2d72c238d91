"""``enclave certs init|issue|revoke`` (dev PKI) and ``enclave audit verify`` (chain check)."""

import argparse
from pathlib import Path
from typing import Any

SECURITY_TOML = """\
# Security settings for a development mTLS setup made by `enclave certs init`.
# Use: ENCLAVE_CONFIG={config} enclave serve
[security]
tls_cert = "{server_cert}"
tls_key = "{server_key}"
tls_ca = "{ca_cert}"
tls_crl = "{crl}"

[security.roles_by_ou]
{ou} = ["{ou}"]
"""


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    certs = subparsers.add_parser("certs", help="a development PKI for mTLS (CA, certs, CRL)")
    certs_commands = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")

    init = certs_commands.add_parser(
        "init", help="create a CA, a CRL, a server certificate and a first client certificate"
    )
    init.add_argument("directory", type=Path)
    init.add_argument("--host", action="append", default=[], help="extra server name or IP")
    init.add_argument("--client", default="dev", help="first client's name (default: dev)")
    init.add_argument(
        "--client-ou",
        default="admin",
        choices=["submitter", "reader", "auditor", "admin"],
        help="first client's organisational unit, mapped to the same role (default: admin)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(handler=_certs_init)

    issue = certs_commands.add_parser("issue", help="issue a client or server certificate")
    issue.add_argument("directory", type=Path)
    issue.add_argument("kind", choices=["client", "server"])
    issue.add_argument("name", nargs="?", help="client name (subject CN)")
    issue.add_argument("--ou", help="client organisational unit (mapped to roles in settings)")
    issue.add_argument("--uri", help="client SAN URI, e.g. spiffe://enclave/client/NAME")
    issue.add_argument("--host", action="append", default=[], help="server name or IP")
    issue.add_argument("--days", type=int, default=None, help="validity in days")
    issue.set_defaults(handler=_certs_issue)

    revoke = certs_commands.add_parser("revoke", help="revoke a certificate (rewrites crl.pem)")
    revoke.add_argument("directory", type=Path)
    revoke.add_argument("certificate", type=Path)
    revoke.set_defaults(handler=_certs_revoke)

    audit = subparsers.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="check an audit log's hash chain (exit 1 at the first bad line)"
    )
    verify.add_argument("files", type=Path, nargs="+", metavar="FILE", help="log files, in order")
    verify.add_argument("--head", type=Path, help="head record (default: <last FILE>.head)")
    verify.set_defaults(handler=_audit_verify)


def _certs_init(args: argparse.Namespace) -> int:
    from app.security import certs
    from app.security.errors import PkiError

    try:
        pki = certs.init_ca(args.directory.resolve(), force=args.force)
        certs.issue_server_cert(pki, hosts=args.host)
        client = certs.issue_client_cert(pki, args.client, organizational_unit=args.client_ou)
    except PkiError as error:
        raise _command_error(str(error)) from error
    config = pki.directory / "security.toml"
    config.write_text(
        SECURITY_TOML.format(
            config=config,
            server_cert=pki.server_cert,
            server_key=pki.server_key,
            ca_cert=pki.ca_cert,
            crl=pki.crl,
            ou=args.client_ou,
        ),
        encoding="utf-8",
    )
    print(f"CA:      {pki.ca_cert} (key {pki.ca_key}, CRL {pki.crl})")
    print(f"server:  {pki.server_cert}")
    print(f"client:  {client.certificate} ({args.client}, OU {args.client_ou})")
    print(f"config:  {config}")
    print(f"serve:   ENCLAVE_CONFIG={config} enclave serve")
    print(
        f"call:    curl --cacert {pki.ca_cert} --cert {client.certificate} "
        f"--key {client.key} https://127.0.0.1:8000/jobs"
    )
    return 0


def _certs_issue(args: argparse.Namespace) -> int:
    from app.security import certs
    from app.security.errors import PkiError

    pki = certs.DevPki(args.directory.resolve())
    try:
        if args.kind == "server":
            issued = certs.issue_server_cert(pki, hosts=args.host, days=args.days or 825)
        else:
            if not args.name:
                raise _command_error("`certs issue DIR client` needs the client's NAME", 2)
            issued = certs.issue_client_cert(
                pki, args.name, organizational_unit=args.ou, uri=args.uri, days=args.days or 365
            )
    except PkiError as error:
        raise _command_error(str(error)) from error
    print(f"{issued.certificate} (key {issued.key}, serial {issued.serial:x})")
    return 0


def _certs_revoke(args: argparse.Namespace) -> int:
    from app.security import certs
    from app.security.errors import PkiError

    try:
        crl = certs.revoke(certs.DevPki(args.directory.resolve()), args.certificate)
    except PkiError as error:
        raise _command_error(str(error)) from error
    print(f"revoked {args.certificate}; CRL rewritten: {crl} (the service reads it per request)")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from app.security.audit.chain import ChainHead, verify_chain
    from app.security.audit.file_sink import head_path

    head_file: Path = args.head or head_path(args.files[-1])
    head = None
    if head_file.exists():
        try:
            head = ChainHead.from_json(head_file.read_text("utf-8"))
        except (ValueError, KeyError, TypeError) as error:
            raise _command_error(f"{head_file} is not an audit head record") from error
    elif args.head is not None:
        raise _command_error(f"{head_file} does not exist")
    numbered: list[tuple[Path, int, str]] = []
    for path in args.files:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise _command_error(f"cannot read {path}: {error}") from error
        numbered += [(path, i, line) for i, line in enumerate(text.splitlines(), start=1)]
    result = verify_chain((line for _, _, line in numbered), head=head)
    if not result.ok:
        bad_line = result.bad_line or len(numbered) + 1
        if bad_line <= len(numbered):
            path, number, _ = numbered[bad_line - 1]
        else:
            path, number = args.files[-1], len(numbered) + 1
        raise _command_error(f"{path} line {number}: {result.reason}")
    note = "" if head else " (no head record: lines cut from the end would go unnoticed)"
    print(f"ok: {result.lines_checked} lines, chain intact up to seq {result.head.seq}{note}")
    return 0


def _command_error(message: str, exit_code: int = 1) -> Exception:
    from app.cli import CommandError

    return CommandError(message, exit_code)
