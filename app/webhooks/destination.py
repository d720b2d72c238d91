"""Which webhook URLs the service will call, and at which address.

A webhook URL is a request the service makes on a caller's behalf, so it is checked like
one (server-side request forgery): HTTPS only, no credentials in the URL, a host on the
configured allowlist (``hooks.example.com``, ``*.example.com``, optionally ``:port``;
without a port only the scheme's default port is allowed), and every address the host
resolves to must be public. Loopback, link-local (including the 169.254.169.254 cloud
metadata service), private, CGNAT, multicast, unspecified and reserved addresses are
refused, as are IPv4-mapped or NAT64 forms of them. ``check_webhook_url`` returns the
addresses it vetted so delivery connects to exactly those (no DNS rebinding in between).
"""

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from app.webhooks.errors import WebhookResolutionError, WebhookURLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)
_FORBIDDEN_CHARACTERS = re.compile(r"[^\x21-\x7e]|\\")
_PORT_SUFFIX = re.compile(r"^(?P<host>.*?)(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class WebhookDestination:
    """A URL that passed the policy, with the addresses it may be delivered to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        """``Host`` header value: the name, plus the port when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"


@dataclass(frozen=True)
class WebhookPolicy:
    """The allowlist and the two escape hatches (for development and tests only)."""

    allowlist: tuple[str, ...]
    # http:// to a host that resolves only to loopback (a receiver on the dev machine).
    allow_http_loopback: bool = False
    # Private, loopback, CGNAT and link-local destinations (never metadata or multicast).
    allow_private_networks: bool = False
    # Injected in tests to map a test host name to loopback; defaults to getaddrinfo.
    resolve: Resolver | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for entry in self.allowlist:
            parse_allowlist_entry(entry)  # a typo fails at start-up, not at delivery

    def check(self, url: str, *, resolve_dns: bool = True) -> WebhookDestination:
        """The vetted destination of ``url``.

        With DNS this blocks (call it in a thread from async code); ``resolve_dns=False``
        is the quick check for request time, and delivery re-checks with DNS anyway.
        """
        return check_webhook_url(
            url,
            self.allowlist,
            allow_http_loopback=self.allow_http_loopback,
            allow_private_networks=self.allow_private_networks,
            resolve=self.resolve,
            resolve_dns=resolve_dns,
        )


def check_webhook_url(
    url: str,
    allowlist: Sequence[str],
    *,
    allow_http_loopback: bool = False,
    allow_private_networks: bool = False,
    resolve: Resolver | None = None,
    resolve_dns: bool = True,
) -> WebhookDestination:
    """Vet ``url`` against the policy; raise ``WebhookURLError`` with the broken rule.

    ``resolve_dns=False`` checks everything but the addresses a host name resolves to (IP
    literals are still checked) and returns no addresses: not enough to deliver.
    """
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise WebhookURLError(f"scheme {parts.scheme!r} is not allowed; use https")
    if scheme == "http" and not allow_http_loopback:
        raise WebhookURLError("http is not allowed; use https")
    host = _normalise_host(parts.hostname or "")
    port = _port(parts, scheme)
    _check_allowlist(host, port, scheme, allowlist)

    addresses = _addresses(host, port, resolve or _resolve, resolve_dns=resolve_dns)
    loopback_only = all(address.is_loopback for address in addresses)
    if scheme == "http" and not loopback_only:
        raise WebhookURLError("http is allowed only to loopback hosts (development mode)")
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is None:
            continue
        exempt = allow_private_networks and reason not in _NEVER_ALLOWED
        dev_loopback = allow_http_loopback and reason == "a loopback address"
        if not (exempt or dev_loopback):
            raise WebhookURLError(f"host {host!r} resolves to {address}, {reason}")
    return WebhookDestination(
        url=url, scheme=scheme, host=host, port=port, addresses=tuple(addresses)
    )


def forbidden_reason(address: IPAddress) -> str | None:
    """Why the service must not connect to ``address``, or ``None`` if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return forbidden_reason(address.ipv4_mapped)
        if address in _NAT64:
            return forbidden_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a carrier-grade NAT address"
    if address.is_private:
        return "a private address"
    if not address.is_global or address.is_reserved:
        return "a reserved, non-public address"
    return None


_NEVER_ALLOWED = frozenset(
    {"a cloud metadata address", "an unspecified address", "a multicast address"}
)


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise WebhookURLError("webhook URL must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise WebhookURLError(f"webhook URL is longer than {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARACTERS.search(url):
        raise WebhookURLError(
            "webhook URL contains whitespace, control, non-ASCII or backslash characters"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise WebhookURLError(f"webhook URL does not parse: {exc}") from None
    if "@" in parts.netloc:
        raise WebhookURLError("credentials in the URL (user:password@) are not allowed")
    if parts.fragment:
        raise WebhookURLError("a URL fragment (#...) is not allowed")
    return parts


def _normalise_host(host: str) -> str:
    host = host.lower().rstrip(".")
    if not host:
        raise WebhookURLError("webhook URL has no host")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", host) or len(host) > 253:
        raise WebhookURLError(f"host {host!r} is not a valid DNS name")
    return host


def _port(parts: SplitResult, scheme: str) -> int:
    try:
        port = parts.port
    except ValueError:
        raise WebhookURLError("webhook URL has an invalid port") from None
    if port is None:
        return DEFAULT_PORTS[scheme]
    if port == 0:
        raise WebhookURLError("port 0 is not a valid destination port")
    return port


def _check_allowlist(host: str, port: int, scheme: str, allowlist: Sequence[str]) -> None:
    host_matched = False
    for entry in allowlist:
        pattern, entry_port = parse_allowlist_entry(entry)
        if not _host_matches(host, pattern):
            continue
        host_matched = True
        if port == (entry_port if entry_port is not None else DEFAULT_PORTS[scheme]):
            return
    if host_matched:
        raise WebhookURLError(
            f"port {port} is not allowed for host {host!r}; "
            "only the default port unless the allowlist names host:port"
        )
    raise WebhookURLError(f"host {host!r} is not in the webhook allowlist")


def parse_allowlist_entry(entry: str) -> tuple[str, int | None]:
    """``(host pattern, port or None)`` of one allowlist entry; ``ValueError`` if malformed.

    Entries are ``host``, ``*.suffix``, an IPv4 literal or ``[IPv6]``, each optionally
    followed by ``:port``.
    """
    text = entry.strip().lower()
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        host, port_text = address, rest.removeprefix(":") if rest else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"webhook allowlist entry {entry!r} is malformed")
    else:
        match = _PORT_SUFFIX.match(text)
        host, port_text = (match.group("host"), match.group("port") or "") if match else ("", "")
    port = int(port_text) if port_text else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"webhook allowlist entry {entry!r} has an invalid port")
    host = host.rstrip(".")
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        pass
    name = host.removeprefix("*.")
    if text.startswith("[") or not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", name):
        raise ValueError(f"webhook allowlist entry {entry!r} is not a host, *.suffix or IP")
    return host, port


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _addresses(host: str, port: int, resolve: Resolver, *, resolve_dns: bool) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if not resolve_dns:
        return []
    try:
        found = [ipaddress.ip_address(raw.split("%")[0]) for raw in resolve(host, port)]
    except OSError as exc:
        raise WebhookResolutionError(f"host {host!r} does not resolve: {exc}") from None
    if not found:
        raise WebhookResolutionError(f"host {host!r} has no addresses")
    return list(dict.fromkeys(found))


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
