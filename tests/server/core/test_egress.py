"""The egress client never reaches an address the server must not, however the URL spells it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from server.core.egress import EgressClient, EgressFailed, EgressPolicy, EgressRefused


class _Handler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        type(self).hits.append(self.path)
        port = self.server.server_address[1]
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to/").replace("PORT", str(port)))
            self.end_headers()
            return
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(2)
        if self.path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(40):
                chunk = b"x" * 65536
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        body = b"y" * 2_000_000 if self.path == "/big" else b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[int]:
    _Handler.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


LOCAL = EgressPolicy.of(["127.0.0.1/32"], timeout_seconds=5)


@pytest.mark.parametrize(
    "spelling",
    [
        "127.0.0.1",
        "2130706433",  # decimal
        "0177.0.0.1",  # octal
        "0x7f.0.0.1",  # hex
        "0x7f000001",
        "127.1",  # short form
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",  # NAT64 around loopback
        "localhost",
        "localhost.",
        "user:pass@127.0.0.1",
        "0.0.0.0",
        "[::]",
    ],
)
def test_loopback_in_any_spelling_is_refused_and_never_contacted(server: int, spelling: str) -> None:
    with EgressClient() as client, pytest.raises((EgressRefused, EgressFailed)) as stopped:
        client.get(f"http://{spelling}:{server}/secret")
    # Refused, or (a name this machine's resolver does not know, like "localhost.") unresolvable.
    assert isinstance(stopped.value, EgressRefused) or stopped.value.reason == "dns"
    assert _Handler.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6 (unique local)
        "http://[fe80::1]/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.100.100.200/",  # shared address space (another cloud's metadata)
        "http://224.0.0.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://[2002:a9fe:a9fe::]/",  # 6to4 around 169.254.169.254
    ],
)
def test_private_link_local_and_metadata_addresses_are_refused(url: str) -> None:
    with EgressClient(EgressPolicy(timeout_seconds=2)) as client, pytest.raises(EgressRefused):
        client.get(url)


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "javascript:alert(1)", "//x"],
)
def test_schemes_other_than_http_and_https_are_refused(url: str) -> None:
    with EgressClient() as client, pytest.raises(EgressRefused) as refused:
        client.get(url)
    assert refused.value.reason in {"scheme", "bad_url"}


def test_an_allowed_network_is_fetched_with_its_body(server: int) -> None:
    with EgressClient(LOCAL) as client:
        fetched = client.get(f"http://127.0.0.1:{server}/hello")
    assert (fetched.status_code, fetched.content) == (200, b"hello")


@pytest.mark.parametrize(
    "target",
    [
        "http://[::1]:PORT/secret",
        "http://2130706434:PORT/secret",
        "file:///etc/passwd",
        "http://169.254.169.254/",
    ],
)
def test_a_redirect_into_a_refused_address_or_scheme_is_refused(server: int, target: str) -> None:
    with EgressClient(LOCAL) as client, pytest.raises(EgressRefused):
        client.get(f"http://127.0.0.1:{server}/to/{target}")
    assert _Handler.hits == [f"/to/{target}"]


def test_redirects_are_followed_and_counted(server: int) -> None:
    with EgressClient(LOCAL) as client:
        fetched = client.get(f"http://127.0.0.1:{server}/to/http://127.0.0.1:PORT/hello")
        assert fetched.content == b"hello" and len(fetched.redirects) == 1
        with pytest.raises(EgressFailed) as failed:
            client.get(f"http://127.0.0.1:{server}/loop")
    assert failed.value.reason == "too_many_redirects"


def test_the_address_connected_is_the_address_checked_even_if_dns_changes(
    server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebinding resolver answers an allowed address first and a forbidden one after: the
    client asks once per connection and connects to what it checked."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.0.0.1", "10.0.0.1"])
    asked: list[str] = []

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = next(answers)
        asked.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with EgressClient(LOCAL) as client:
        assert client.get(f"http://rebind.test:{server}/hello").content == b"hello"
    assert asked == ["127.0.0.1"]
    assert _Handler.hits == ["/hello"]


def test_a_host_with_any_forbidden_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def mixed(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    with EgressClient() as client, pytest.raises(EgressRefused):
        client.get("http://mixed.test/")


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_the_body_is_capped(server: int, path: str) -> None:
    policy = EgressPolicy.of(["127.0.0.1/32"], max_bytes=1_000_000, timeout_seconds=5)
    with EgressClient(policy) as client, pytest.raises(EgressFailed) as failed:
        client.get(f"http://127.0.0.1:{server}{path}")
    assert failed.value.reason == "too_large"


def test_the_time_is_capped(server: int) -> None:
    policy = EgressPolicy.of(["127.0.0.1/32"], timeout_seconds=0.5)
    started = time.monotonic()
    with EgressClient(policy) as client, pytest.raises(EgressFailed) as failed:
        client.get(f"http://127.0.0.1:{server}/slow")
    assert failed.value.reason == "timeout" and time.monotonic() - started < 1.9
