"""Webhooks: Standard Webhooks signatures, the URL policy (SSRF), delivery with retries.

Delivery tests talk to a real HTTP(S) server on 127.0.0.1 in a thread; the only stand-in
is a DNS table (``resolve=``) that maps test host names to addresses.
"""

import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme

from app.webhooks import (
    WebhookPolicy,
    WebhookSecretError,
    WebhookURLError,
    WebhookVerificationError,
    check_webhook_url,
    deliver,
    generate_secret,
    sign,
    signature_headers,
    verify,
)
from tests.seaweed import free_port

SECRET = generate_secret()
EVENT = {"type": "job.succeeded", "data": {"job_id": "3f1c", "state": "succeeded"}}

# ---------------------------------------------------------------------------- signatures


def test_matches_the_standard_webhooks_reference_vector():
    signature = sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signed_message_verifies():
    body = b'{"type":"job.succeeded"}'
    headers = signature_headers("msg_1", body, SECRET)
    verify(headers, body, SECRET)
    verify({name.upper(): value for name, value in headers.items()}, body, SECRET)


def test_tampered_body_fails():
    headers = signature_headers("msg_1", b'{"state":"failed"}', SECRET)
    with pytest.raises(WebhookVerificationError, match="no webhook-signature matches"):
        verify(headers, b'{"state":"succeeded"}', SECRET)


def test_tampered_id_or_wrong_secret_fails():
    body = b"{}"
    headers = signature_headers("msg_1", body, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify({**headers, "webhook-id": "msg_2"}, body, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify(headers, body, generate_secret())


@pytest.mark.parametrize("skew", [-301, 301, 10_000])
def test_timestamps_outside_tolerance_fail(skew: int):
    sent = 1_800_000_000
    headers = signature_headers("msg_1", b"{}", SECRET, timestamp=sent)
    verify(headers, b"{}", SECRET, now=sent + 299)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(headers, b"{}", SECRET, now=sent + skew)


def test_one_valid_signature_among_several_is_enough():
    body = b"{}"
    headers = signature_headers("msg_1", body, SECRET)
    old = sign("msg_1", int(headers["webhook-timestamp"]), body, generate_secret())
    rotated = {**headers, "webhook-signature": f"{old} {headers['webhook-signature']}"}
    verify(rotated, body, SECRET)


def test_missing_headers_and_bad_secrets_are_reported():
    with pytest.raises(WebhookVerificationError, match="missing header webhook-id"):
        verify({}, b"{}", SECRET)
    with pytest.raises(WebhookVerificationError, match="not an integer"):
        verify(
            {"webhook-id": "m", "webhook-timestamp": "soon", "webhook-signature": "v1,x"},
            b"{}",
            SECRET,
        )
    with pytest.raises(WebhookSecretError):
        sign("m", 1, b"", "whsec_not base64!")
    with pytest.raises(WebhookSecretError, match="at least"):
        sign("m", 1, b"", "whsec_c2hvcnQ=")


# ---------------------------------------------------------------------------- URL policy

DNS = {
    "public.example.com": ["93.184.216.34"],
    "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "metadata.example.com": ["169.254.169.254"],
    "internal.example.com": ["10.0.0.5"],
    "rebind.example.com": ["93.184.216.34", "192.168.1.1"],
    "ula.example.com": ["fd00::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "nat64.example.com": ["64:ff9b::a9fe:a9fe"],
    "cgnat.example.com": ["100.64.1.1"],
    "multicast.example.com": ["224.0.0.1"],
    "zero.example.com": ["0.0.0.0"],
    "linklocal6.example.com": ["fe80::1"],
    "localhost": ["127.0.0.1", "::1"],
}
ALLOWLIST = [
    "*.example.com",
    "hooks.example.com:8443",
    "169.254.169.254",
    "127.0.0.1",
    "10.0.0.1",
    "192.168.1.10",
    "[::1]",
    "localhost:8080",
]


def fake_dns(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return DNS[host]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.0.0.1/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://[::1]/hook", "loopback"),
        ("https://metadata.example.com/hook", "169.254.169.254, a cloud metadata"),
        ("https://internal.example.com/hook", "10.0.0.5, a private address"),
        ("https://rebind.example.com/hook", "192.168.1.1, a private address"),
        ("https://ula.example.com/hook", "fd00::1, a private address"),
        ("https://mapped.example.com/hook", "loopback"),
        ("https://nat64.example.com/hook", "cloud metadata"),
        ("https://cgnat.example.com/hook", "carrier-grade NAT"),
        ("https://multicast.example.com/hook", "multicast"),
        ("https://zero.example.com/hook", "unspecified"),
        ("https://linklocal6.example.com/hook", "link-local"),
        ("https://evil.com/hook", "not in the webhook allowlist"),
        ("https://example.com.evil.com/hook", "not in the webhook allowlist"),
        ("https://evilexample.com/hook", "not in the webhook allowlist"),
        ("https://example.com/hook", "not in the webhook allowlist"),
        ("http://public.example.com/hook", "http is not allowed"),
        ("ftp://public.example.com/hook", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("https://user:pw@public.example.com/hook", "credentials"),
        ("https://public.example.com@evil.com/hook", "credentials"),
        ("https://public.example.com:22/hook", "port 22 is not allowed"),
        ("https://hooks.example.com:8444/hook", "port 8444 is not allowed"),
        ("https://public.example.com:99999/hook", "invalid port"),
        ("https://public.example.com:0/hook", "port 0"),
        ("https://public.example.com\\@evil.com/", "backslash"),
        ("https://public.example.com/a hook", "whitespace"),
        ("https://public.example.com/hook#frag", "fragment"),
        ("https://nxdomain.example.com/hook", "does not resolve"),
        ("https:///hook", "no host"),
        ("", "non-empty"),
    ],
)
def test_url_policy_refuses_with_a_reason(url: str, reason: str):
    with pytest.raises(WebhookURLError, match=reason.replace(".", r"\.")):
        check_webhook_url(url, ALLOWLIST, resolve=fake_dns)


def test_url_policy_accepts_public_allowlisted_hosts():
    destination = check_webhook_url(
        "https://Public.Example.COM./hook?x=1", ALLOWLIST, resolve=fake_dns
    )
    assert (destination.host, destination.port) == ("public.example.com", 443)
    assert [str(a) for a in destination.addresses] == ["93.184.216.34"]
    on_port = check_webhook_url("https://hooks.example.com:8443/h", ALLOWLIST, resolve=fake_dns)
    assert on_port.host_header == "hooks.example.com:8443"
    assert len(on_port.addresses) == 2


def test_private_network_flag_allows_private_but_never_metadata():
    allowed = check_webhook_url(
        "https://internal.example.com/hook",
        ALLOWLIST,
        allow_private_networks=True,
        resolve=fake_dns,
    )
    assert str(allowed.addresses[0]) == "10.0.0.5"
    with pytest.raises(WebhookURLError, match="cloud metadata"):
        check_webhook_url(
            "https://169.254.169.254/", ALLOWLIST, allow_private_networks=True, resolve=fake_dns
        )


def test_http_dev_flag_allows_only_loopback():
    local = check_webhook_url(
        "http://localhost:8080/hook", ALLOWLIST, allow_http_loopback=True, resolve=fake_dns
    )
    assert local.scheme == "http" and all(a.is_loopback for a in local.addresses)
    with pytest.raises(WebhookURLError, match="only to loopback"):
        check_webhook_url(
            "http://public.example.com/hook", ALLOWLIST, allow_http_loopback=True, resolve=fake_dns
        )


def test_request_time_check_skips_dns_but_not_the_rest():
    policy = WebhookPolicy(allowlist=tuple(ALLOWLIST), resolve=fake_dns)
    quick = policy.check("https://nxdomain.example.com/hook", resolve_dns=False)
    assert quick.host == "nxdomain.example.com" and quick.addresses == ()
    for url in ["https://evil.com/hook", "https://169.254.169.254/", "http://public.example.com/"]:
        with pytest.raises(WebhookURLError):
            policy.check(url, resolve_dns=False)


@pytest.mark.parametrize(
    "entry", ["*", "[not-ipv6]", "hooks.example.com:70000", "a b.com", "[::1]x"]
)
def test_malformed_allowlist_entries_fail_at_start_up(entry: str):
    with pytest.raises(ValueError, match="allowlist entry"):
        WebhookPolicy(allowlist=("hooks.example.com", entry))


def test_empty_allowlist_refuses_everything():
    with pytest.raises(WebhookURLError, match="allowlist"):
        check_webhook_url("https://public.example.com/hook", [], resolve=fake_dns)


# ---------------------------------------------------------------------------- delivery


class Receiver(ThreadingHTTPServer):
    """A webhook receiver that records requests and answers from a script of statuses."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.delay_s = 0.0

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request, client_address) -> None:  # a client that gave up
        pass


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status, headers = self.server.script.popleft() if self.server.script else (200, {})
        time.sleep(self.server.delay_s)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(receiver: Receiver) -> Iterator[Receiver]:
    thread = threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve(Receiver())


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def local_policy(port: int) -> WebhookPolicy:
    return WebhookPolicy(
        allowlist=(f"127.0.0.1:{port}",), allow_http_loopback=True, allow_private_networks=True
    )


async def test_delivered_event_verifies_at_the_receiver(receiver: Receiver):
    async with httpx.AsyncClient() as client:
        result = await deliver(
            f"http://127.0.0.1:{receiver.port}/hooks/enclave?tenant=7",
            EVENT,
            SECRET,
            client=client,
            policy=local_policy(receiver.port),
        )
    assert result.delivered and result.attempts == 1 and result.status_code == 200
    [(headers, body)] = receiver.received
    verify(headers, body, SECRET)
    assert json.loads(body) == EVENT
    assert headers["webhook-id"] == result.message_id
    assert headers["content-type"] == "application/json"


async def test_retries_server_errors_then_succeeds(receiver: Receiver):
    receiver.script.extend([(503, {}), (500, {}), (200, {})])
    sleeps = Sleeps()
    async with httpx.AsyncClient() as client:
        result = await deliver(
            f"http://127.0.0.1:{receiver.port}/hook",
            EVENT,
            SECRET,
            client=client,
            policy=local_policy(receiver.port),
            sleep=sleeps,
        )
    assert result.delivered and result.attempts == 3
    assert sleeps.delays == [1, 2]
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(receiver.received) == 3 and ids == {result.message_id}
    for headers, body in receiver.received:
        verify(headers, body, SECRET)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302])
async def test_client_errors_and_redirects_are_not_retried(receiver: Receiver, status: int):
    receiver.script.append((status, {"Location": "http://169.254.169.254/"}))
    async with httpx.AsyncClient() as client:
        result = await deliver(
            f"http://127.0.0.1:{receiver.port}/hook",
            EVENT,
            SECRET,
            client=client,
            policy=local_policy(receiver.port),
            sleep=Sleeps(),
        )
    assert not result.delivered
    assert (result.attempts, result.status_code) == (1, status)
    assert result.error == f"the receiver answered HTTP {status}"
    assert len(receiver.received) == 1


async def test_408_and_429_are_retried_honouring_retry_after(receiver: Receiver):
    receiver.script.extend([(408, {}), (429, {"Retry-After": "7"}), (204, {})])
    sleeps = Sleeps()
    async with httpx.AsyncClient() as client:
        result = await deliver(
            f"http://127.0.0.1:{receiver.port}/hook",
            EVENT,
            SECRET,
            client=client,
            policy=local_policy(receiver.port),
            sleep=sleeps,
        )
    assert result.delivered and result.attempts == 3 and result.status_code == 204
    assert sleeps.delays == [1, 7]


async def test_gives_up_after_the_last_attempt(receiver: Receiver):
    receiver.script.extend([(502, {})] * 3)
    async with httpx.AsyncClient() as client:
        result = await deliver(
            f"http://127.0.0.1:{receiver.port}/hook",
            EVENT,
            SECRET,
            client=client,
            policy=local_policy(receiver.port),
            attempts=3,
            sleep=Sleeps(),
        )
    assert not result.delivered
    assert (result.attempts, result.status_code) == (3, 502)
    assert len(receiver.received) == 3


async def test_connection_refused_and_timeouts_are_retried(receiver: Receiver):
    closed = free_port()
    sleeps = Sleeps()
    async with httpx.AsyncClient() as client:
        refused = await deliver(
            f"http://127.0.0.1:{closed}/hook",
            EVENT,
            SECRET,
            client=client,
            policy=local_policy(closed),
            attempts=3,
            sleep=sleeps,
        )
        receiver.delay_s = 1.0
        slow = await deliver(
            f"http://127.0.0.1:{receiver.port}/hook",
            EVENT,
            SECRET,
            client=client,
            policy=local_policy(receiver.port),
            attempts=2,
            timeout_s=0.2,
            sleep=sleeps,
        )
    assert not refused.delivered and refused.attempts == 3
    assert refused.error is not None and "connection failed" in refused.error
    assert not slow.delivered and slow.attempts == 2
    assert slow.error == "the receiver timed out"


async def test_refused_urls_send_nothing(receiver: Receiver):
    strict = WebhookPolicy(allowlist=(f"127.0.0.1:{receiver.port}",))
    async with httpx.AsyncClient() as client:
        result = await deliver(
            f"https://127.0.0.1:{receiver.port}/hook",
            EVENT,
            SECRET,
            client=client,
            policy=strict,
            sleep=Sleeps(),
        )
    assert not result.delivered and result.attempts == 1
    assert result.error is not None and "loopback" in result.error
    assert receiver.received == []


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.enclave.test").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_https_delivery_is_pinned_to_the_vetted_address(tls):
    server_context, client_context = tls
    table = {"hooks.enclave.test": ["127.0.0.1"], "other.enclave.test": ["127.0.0.1"]}
    for receiver in serve(Receiver(tls=server_context)):
        policy = WebhookPolicy(
            allowlist=(f"*.enclave.test:{receiver.port}",),
            allow_private_networks=True,
            resolve=lambda host, port: table[host],
        )
        async with httpx.AsyncClient(verify=client_context) as client:
            good = await deliver(
                f"https://hooks.enclave.test:{receiver.port}/hook",
                EVENT,
                SECRET,
                client=client,
                policy=policy,
            )
            # Same address, but the certificate does not name this host: TLS must fail.
            wrong_name = await deliver(
                f"https://other.enclave.test:{receiver.port}/hook",
                EVENT,
                SECRET,
                client=client,
                policy=policy,
                attempts=1,
            )
        assert good.delivered, good.error
        [(headers, body)] = receiver.received
        assert headers["host"] == f"hooks.enclave.test:{receiver.port}"
        verify(headers, body, SECRET)
        assert not wrong_name.delivered
        assert wrong_name.error is not None and "connection failed" in wrong_name.error
