"""Deny by default: only allowed source CIDRs are served; X-Forwarded-For only from proxies."""

from ipaddress import ip_network

import pytest

from app.security.network import NetworkPolicy
from tests.app.security.conftest import audit_lines, base_settings
from tests.app.security.live_server import mtls_client, serve


def policy(allowed: list[str], proxies: list[str] = ()) -> NetworkPolicy:
    return NetworkPolicy(
        allowed=tuple(ip_network(n) for n in allowed),
        trusted_proxies=tuple(ip_network(n) for n in proxies),
    )


@pytest.fixture
def only_127_0_0_2(pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    with serve(base_settings(pki, allowed_cidrs=["127.0.0.2/32"]), log) as url:
        yield url, log


def test_connection_from_outside_the_allowed_cidrs_gets_403_and_is_audited(pki, only_127_0_0_2):
    url, log = only_127_0_0_2
    with mtls_client(pki, "alice", url, local_address="127.0.0.1") as client:
        response = client.get("/whoami")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 403
    [line] = audit_lines(log)
    assert line["outcome"] == "denied"
    assert line["status"] == 403
    assert line["source"] == "127.0.0.1"
    assert line["identity"] == "alice"
    assert "allowed_cidrs" in line["reason"]


def test_connection_from_an_allowed_address_is_served(pki, only_127_0_0_2):
    url, log = only_127_0_0_2
    with mtls_client(pki, "alice", url, local_address="127.0.0.2") as client:
        response = client.get("/whoami")
    assert response.status_code == 200
    assert response.json()["source"] == "127.0.0.2"
    assert audit_lines(log)[0]["outcome"] == "allowed"


def test_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored(pki, only_127_0_0_2):
    url, log = only_127_0_0_2
    with mtls_client(pki, "alice", url, local_address="127.0.0.1") as client:
        response = client.get("/whoami", headers={"X-Forwarded-For": "127.0.0.2"})
    assert response.status_code == 403
    assert audit_lines(log)[0]["source"] == "127.0.0.1"


def test_x_forwarded_for_from_a_trusted_proxy_decides_the_client_address(pki, tmp_path):
    settings = base_settings(
        pki, allowed_cidrs=["192.168.10.0/24"], trusted_proxies=["127.0.0.1/32"]
    )
    log = tmp_path / "audit.jsonl"
    with serve(settings, log) as url, mtls_client(pki, "alice", url) as client:
        office = client.get("/whoami", headers={"X-Forwarded-For": "192.168.10.7"})
        # a client-sent hop on the left is not believed: the proxy appended the real one
        spoofed = client.get("/whoami", headers={"X-Forwarded-For": "192.168.10.7, 203.0.113.9"})
        missing = client.get("/whoami")
    assert office.status_code == 200
    assert office.json()["source"] == "192.168.10.7"
    assert spoofed.status_code == 403
    assert missing.status_code == 403  # the proxy's own address is not in the allowlist
    assert [line["source"] for line in audit_lines(log)] == [
        "192.168.10.7",
        "203.0.113.9",
        "127.0.0.1",
    ]


def test_default_policy_is_loopback_only():
    from app.security.config import SecuritySettings

    default = NetworkPolicy.from_settings(SecuritySettings())
    assert default.allows(default.client_address("127.0.0.1", []))
    assert default.allows(default.client_address("::1", []))
    assert not default.allows(default.client_address("192.168.10.5", []))
    assert not default.allows(default.client_address("10.0.1.4", []))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.0.0.9", ["198.51.100.1"], "10.0.0.9"),  # untrusted peer: header ignored
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["198.51.100.1, 10.0.0.2"], "198.51.100.1"),  # skip trusted hops
        ("10.0.0.1", ["1.2.3.4", "198.51.100.1"], "198.51.100.1"),  # several headers
        ("10.0.0.1", ["not-an-ip, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["198.51.100.1, not-an-ip"], None),  # garbage where a proxy wrote
        ("10.0.0.1", [], "10.0.0.1"),
        ("::ffff:10.0.0.9", [], "10.0.0.9"),  # IPv4-mapped IPv6 peer
        ("10.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
    ],
)
def test_client_address_resolution(peer, forwarded, expected):
    resolved = policy(["0.0.0.0/0"], ["10.0.0.0/30"]).client_address(peer, forwarded)
    assert (str(resolved) if resolved else None) == expected


def test_unknown_client_address_is_never_allowed():
    assert not policy(["0.0.0.0/0", "::/0"]).allows(None)
