"""`enclave certs`: a working dev PKI in one step, private keys kept private."""

import tomllib

from cryptography import x509

from app.cli import main as enclave
from app.security.certs import DevPki
from app.security.config import SecuritySettings
from tests.app.security.live_server import mtls_client, serve


def test_init_gives_a_working_mtls_setup_in_one_step(tmp_path, capsys):
    directory = tmp_path / "pki"
    assert enclave(["certs", "init", str(directory)]) == 0
    pki = DevPki(directory)
    for key in [pki.ca_key, pki.server_key, pki.client_key("dev")]:
        assert key.stat().st_mode & 0o777 == 0o600
    config = tomllib.loads((directory / "security.toml").read_text())
    settings = SecuritySettings.model_validate(config["security"])
    with serve(settings, tmp_path / "audit.jsonl") as url, mtls_client(pki, "dev", url) as dev:
        whoami = dev.get("/whoami").json()
    assert whoami["name"] == "dev"
    assert "admin" in whoami["roles"]
    assert "BEGIN" not in capsys.readouterr().out  # no key material printed


def test_init_refuses_to_replace_an_existing_ca(tmp_path, capsys):
    directory = tmp_path / "pki"
    assert enclave(["certs", "init", str(directory)]) == 0
    ca_before = (directory / "ca.pem").read_bytes()
    assert enclave(["certs", "init", str(directory)]) == 1
    assert "--force" in capsys.readouterr().err
    assert (directory / "ca.pem").read_bytes() == ca_before


def test_issue_client_with_ou_and_uri_then_revoke_puts_it_in_the_crl(tmp_path, capsys):
    directory = tmp_path / "pki"
    enclave(["certs", "init", str(directory)])
    uri = "spiffe://enclave/client/carol"
    code = enclave(
        ["certs", "issue", str(directory), "client", "carol", "--ou", "reader", "--uri", uri]
    )
    assert code == 0
    pki = DevPki(directory)
    certificate = x509.load_pem_x509_certificate(pki.client_cert("carol").read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [uri]
    assert enclave(["certs", "revoke", str(directory), str(pki.client_cert("carol"))]) == 0
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None


def test_bad_client_name_and_missing_ca_are_one_line_errors(tmp_path, capsys):
    assert enclave(["certs", "issue", str(tmp_path), "client", "carol"]) == 1
    assert "enclave certs init" in capsys.readouterr().err
    enclave(["certs", "init", str(tmp_path / "pki")])
    assert enclave(["certs", "issue", str(tmp_path / "pki"), "client", "../etc/passwd"]) == 1
    assert "client name" in capsys.readouterr().err
