"""The one way the server reaches out to a URL someone else chose (URL-list sources, webhooks).

A URL from a user may point at the server's own network: the database, the broker, a cloud
metadata service. So every connection is checked where it is made, not where the URL is read:

- only `http` and `https`, on every hop (redirects are followed here, one at a time, each hop
  checked again and counted);
- the host is resolved once per connection and every address it resolves to must be public
  (not loopback, private, link-local — the metadata services live there —, shared, multicast,
  reserved or unspecified; IPv4 inside IPv6 judged as IPv4). Whatever spelling the URL used —
  decimal `2130706433`, octal `0177.0.0.1`, hex, short `127.1`, `[::ffff:127.0.0.1]`, a name
  that resolves to one of these — the resolver turns it into the address that is judged;
- the socket connects to the address that was judged (no second lookup), so a DNS answer that
  changes between the check and the connect reaches nothing; TLS still verifies the host name;
- no proxy from the environment (it would connect on our behalf, unchecked);
- the body is capped in bytes and the whole exchange in seconds.

`EgressSettings.allow_networks` lets an on-premises deployment name internal networks it trusts
(empty by default).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from server.core.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = frozenset({"http", "https"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Not caught by ipaddress's flags in every Python version: NAT64 and 6to4 carry IPv4 inside.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")


class EgressRefused(DomainError):
    """The URL may not be fetched: a bad scheme, or an address the server must not reach."""

    status_code = 400
    code = "egress_refused"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, extra={"reason": reason})
        self.reason = reason


class EgressFailed(DomainError):
    """The fetch was allowed but did not succeed: network error, HTTP error, too big, too slow."""

    status_code = 502
    code = "egress_failed"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, extra={"reason": reason})
        self.reason = reason


@dataclass(frozen=True)
class EgressPolicy:
    max_bytes: int = 50 * 1024 * 1024
    timeout_seconds: float = 30.0
    max_redirects: int = 5
    allow_networks: tuple[IPNetwork, ...] = ()
    user_agent: str = "annotate-anyone/0.1 (+egress)"

    @classmethod
    def of(cls, networks: Iterable[str] = (), **kwargs: Any) -> EgressPolicy:
        return cls(allow_networks=tuple(ipaddress.ip_network(n, strict=False) for n in networks), **kwargs)


def refusal_for(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why `address` may not be reached (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address in _SIXTOFOUR:
            embedded = ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal_for(embedded, allowed)
    if any(address in network for network in allowed):
        return None
    for reason, flagged in (
        ("loopback", address.is_loopback),
        ("link_local", address.is_link_local),  # 169.254.169.254 and friends: cloud metadata
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("unspecified", address.is_unspecified),
        ("not_global", not address.is_global),  # shared (100.64/10), documentation, ...
    ):
        if flagged:
            return reason
    return None


def resolve_checked(host: str, port: int, allowed: Sequence[IPNetwork]) -> list[tuple[int, str]]:
    """Resolve `host` once; every answer must be reachable, else the whole host is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressFailed("dns", f"cannot resolve {host!r}: {exc}") from exc
    out: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        literal = str(sockaddr[0]).split("%", 1)[0]
        address = ipaddress.ip_address(literal)
        reason = refusal_for(address, allowed)
        if reason is not None:
            raise EgressRefused(
                reason, f"{host!r} resolves to a {reason.replace('_', '-')} address ({address})"
            )
        out.append((family, literal))
    if not out:
        raise EgressFailed("dns", f"{host!r} has no address")
    return out


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to addresses `resolve_checked` allowed, resolved in the same call."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for _, literal in resolve_checked(host, port, self.policy.allow_networks):
            try:
                return super().connect_tcp(literal, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise EgressRefused("unix_socket", "unix sockets are never reached from a user's URL")


class _CheckedTransport(httpx.HTTPTransport):
    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__(retries=0, trust_env=False)
        # The pool httpx would build, with our backend: the same TLS verification (by host name).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=10,
            max_keepalive_connections=5,
            network_backend=_CheckedBackend(policy),
        )


@dataclass
class Fetched:
    url: str  # after redirects
    status_code: int
    headers: dict[str, str]
    content: bytes
    redirects: list[str] = field(default_factory=list)


class EgressClient:
    """Thread-safe; one per process is enough (`get`/`post`, each bounded by the policy)."""

    def __init__(self, policy: EgressPolicy | None = None) -> None:
        self.policy = policy or EgressPolicy()
        self._client = httpx.Client(
            transport=_CheckedTransport(self.policy),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.policy.timeout_seconds),
            # identity: the byte cap then counts what is kept, and no decompression bomb unpacks.
            headers={"user-agent": self.policy.user_agent, "accept-encoding": "identity"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EgressClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, url: str, headers: dict[str, str] | None = None) -> Fetched:
        return self.request("GET", url, headers=headers)

    def post(self, url: str, content: bytes, headers: dict[str, str] | None = None) -> Fetched:
        return self.request("POST", url, content=content, headers=headers)

    def request(
        self, method: str, url: str, *, content: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Fetched:
        deadline = time.monotonic() + self.policy.timeout_seconds
        hops: list[str] = []
        current = url
        while True:
            _check_scheme(current)
            status, response_headers, body = self._send_capped(method, current, content, headers, deadline)
            location = response_headers.get("location")
            if status not in REDIRECTS or location is None:
                if status >= 400:
                    raise EgressFailed("http_status", f"{current} answered {status}")
                return Fetched(current, status, response_headers, body, hops)
            if len(hops) >= self.policy.max_redirects:
                raise EgressFailed("too_many_redirects", f"more than {self.policy.max_redirects} redirects")
            hops.append(current)
            current = urljoin(current, location)
            if status == 303 or (status in {301, 302} and method == "POST"):
                method, content = "GET", None

    def _send_capped(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str] | None,
        deadline: float,
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            request = self._client.build_request(method, url, content=content, headers=headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            raise EgressRefused("bad_url", f"not a fetchable URL: {exc}") from exc
        try:
            response = self._client.send(request, stream=True)
        except (EgressRefused, EgressFailed):
            raise
        except httpx.TimeoutException as exc:
            raise EgressFailed("timeout", f"{url}: no answer within the time limit") from exc
        except httpx.HTTPError as exc:
            raise EgressFailed("network", f"{url}: {type(exc).__name__}: {exc}") from exc
        try:
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.policy.max_bytes:
                raise EgressFailed(
                    "too_large", f"{url}: {declared} bytes is over the {self.policy.max_bytes}-byte cap"
                )
            body = bytearray()
            for chunk in response.iter_raw(64 * 1024):
                body.extend(chunk)
                if len(body) > self.policy.max_bytes:
                    raise EgressFailed("too_large", f"{url}: over the {self.policy.max_bytes}-byte cap")
                if time.monotonic() > deadline:
                    raise EgressFailed("timeout", f"{url}: the body took longer than the time limit")
        except httpx.TimeoutException as exc:
            raise EgressFailed("timeout", f"{url}: no answer within the time limit") from exc
        except httpx.HTTPError as exc:
            raise EgressFailed("network", f"{url}: {type(exc).__name__}: {exc}") from exc
        finally:
            response.close()
        return response.status_code, dict(response.headers), bytes(body)


def _check_scheme(url: str) -> None:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in SCHEMES:
        raise EgressRefused("scheme", f"only http and https URLs are fetched, not {scheme or 'this'!r}")
