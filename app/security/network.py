"""Network policy: only allowed source CIDRs reach the service; everything else gets 403.

The client address is the socket's peer. ``X-Forwarded-For`` is read only when that peer
is a configured trusted proxy, and then from the right: the first hop that is not itself a
trusted proxy is the client (hops to its left are whatever the client chose to send).
"""

import functools
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from starlette.types import ASGIApp, Receive, Scope, Send

from app.security.config import Network, SecuritySettings
from app.security.context import SOURCE_KEY, record_denial, request_state
from app.security.problem import send_problem

IPAddress = IPv4Address | IPv6Address
FORWARDED_FOR = b"x-forwarded-for"


@functools.lru_cache(maxsize=4096)
def parse_address(text: str) -> IPAddress | None:
    """An IP address from a socket or header value (IPv4-mapped IPv6 becomes IPv4).

    Cached: every request parses its peer address two or three times (identity, network
    policy, proxy check), and ``ip_address`` costs about as much as the rest of the policy.
    """
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


@dataclass(frozen=True)
class NetworkPolicy:
    allowed: tuple[Network, ...]
    trusted_proxies: tuple[Network, ...]

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> "NetworkPolicy":
        return cls(allowed=settings.allowed_cidrs, trusted_proxies=settings.trusted_proxies)

    def is_trusted_proxy(self, peer: str | None) -> bool:
        address = parse_address(peer) if peer else None
        return address is not None and _within(address, self.trusted_proxies)

    def client_address(self, peer: str | None, forwarded_for: list[str]) -> IPAddress | None:
        """The caller's address; ``None`` when it cannot be known (then nothing allows it)."""
        address = parse_address(peer) if peer else None
        if address is None or not _within(address, self.trusted_proxies):
            return address
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            hop_address = parse_address(hop)
            if hop_address is None:
                return None  # a trusted proxy appended garbage, or the chain is forged
            if not _within(hop_address, self.trusted_proxies):
                return hop_address
            address = hop_address
        return address

    def allows(self, address: IPAddress | None) -> bool:
        return address is not None and _within(address, self.allowed)


def scope_client_address(policy: NetworkPolicy, scope: Scope) -> IPAddress | None:
    """The request's client address under ``policy``, also recorded on the scope's state."""
    client = scope.get("client")
    peer = client[0] if client else None
    forwarded = [
        value.decode("latin-1") for name, value in scope.get("headers", []) if name == FORWARDED_FOR
    ]
    address = policy.client_address(peer, forwarded)
    request_state(scope)[SOURCE_KEY] = str(address) if address else "unknown"
    return address


class NetworkPolicyMiddleware:
    """Refuses requests from outside the allowed CIDRs with 403, before any route runs."""

    def __init__(self, app: ASGIApp, policy: NetworkPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        address = scope_client_address(self.policy, scope)
        if self.policy.allows(address):
            await self.app(scope, receive, send)
            return
        record_denial(scope, "source address not in allowed_cidrs")
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_problem(
            send, 403, f"requests from {address or 'an unknown address'} are not allowed"
        )
