"""The HTTP edge of a real `bidroom serve` on port 0, attacked as a client would: bodies too large
to read (declared or chunked), bad input that once answered 500, login floods, and the security
headers every response carries."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from nodes import SECRET, Node, solo
from tendering import Person, World, grant_roles, make_world, publish_body, tender_body

from bidroom import tokens
from ca import login
from ca import primitives as p

TIMEOUT = 30.0  # a generous bound on one answer of a busy machine's node
HUGE = 256 * 1024 * 1024
STALL = "2"  # seconds a body may pause on the `impatient` node


def headers(person: Person, role: str | None = None) -> dict[str, str]:
    bound = tokens.bound(person.cert)  # as login binds it: the chair signs the lot's key
    identity = tokens.Identity(person.subject, person.name, (role or person.role,), None, "", bound)
    token = tokens.mint(identity, SECRET, datetime.now(UTC), timedelta(hours=1))
    return {"authorization": f"Bearer {token}"}


@dataclass
class Site:
    node: Node
    world: World
    lot: dict[str, Any]

    def person(self, name: str) -> Person:
        return self.world.people[name]

    @property
    def chair(self) -> Person:
        return self.person("王敏")

    @property
    def bidder(self) -> Person:
        return self.person("海洁")


def node_with_people(folder: Path, **env: str) -> tuple[Node, World]:
    """A node whose trust store and registry know make_world's people."""
    world = make_world(folder / "trust")
    asyncio.run(grant_roles(f"sqlite+aiosqlite:///{folder / 'b.db'}", world))
    node = solo(folder, BIDROOM_TRUST_DIR=str(world.trust), BIDROOM_MIN_BID_DAYS="0", **env)
    return node, world


def open_site(folder: Path, **env: str) -> Iterator[Site]:
    """A node with a published lot for which 海洁 is registered."""
    node, world = node_with_people(folder, **env)
    try:
        with httpx.Client(base_url=node.url, timeout=TIMEOUT) as client:
            chair = headers(world.people["王敏"])
            wang = world.people["王敏"]
            lot = publish_body(client, tender_body(world), chair, wang)  # type: ignore[arg-type]
            bidder = headers(world.people["海洁"])
            registered = client.post(f"/api/lots/{lot['id']}/registrations", headers=bidder)
            assert registered.status_code in (200, 201), registered.text
        yield Site(node, world, lot)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from open_site(tmp_path_factory.mktemp("edge"))


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A node that waits only STALL seconds for the next piece of a body (default 60)."""
    yield from open_site(tmp_path_factory.mktemp("stall"), BIDROOM_BODY_TIMEOUT_SECONDS=STALL)


# raw HTTP: what a client sends before the server answers ------------------------------------


def _connect(node: Node) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def _head(method: str, path: str, fields: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in fields.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the server's answer (it closes the connection after it)."""
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)  # a server still waiting for the body times out here
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def declared(node: Node, path: str, fields: dict[str, str]) -> tuple[int, bytes]:
    """Declare a 256 MiB body, send none of it, and wait for the answer."""
    with _connect(node) as sock:
        sock.sendall(_head("POST", path, {**fields, "Content-Length": str(HUGE)}))
        return _answer(sock)


def chunked(node: Node, path: str, fields: dict[str, str], sent: int) -> tuple[int, bytes]:
    """Stream ``sent`` bytes of a chunked body (no length, no end), and wait for the answer."""
    piece = b"x" * 16384
    with _connect(node) as sock:
        sock.sendall(_head("POST", path, {**fields, "Transfer-Encoding": "chunked"}))
        for _ in range(sent // len(piece)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        return _answer(sock)


def stalled(node: Node, head: bytes, part: bytes) -> tuple[int, bytes]:
    """Send ``head`` and ``part`` of its body, then nothing: the answer, once the connection has
    closed after it (a socket timeout here: the node waited on)."""
    with _connect(node) as sock:
        sock.sendall(head + part)
        status, body = _answer(sock)
        rest = sock.recv(65536)
        assert rest == b"", rest
        return status, body


def _bodies(site: Site) -> list[tuple[str, dict[str, str], int]]:
    """(path, headers, limit) of every kind of endpoint that takes a body."""
    room = site.lot["room"]
    chair = headers(site.chair)
    return [
        ("/api/login", {}, 32 * 1024),
        ("/api/rooms", chair, 64 * 1024),
        ("/api/tenders", chair, 1024 * 1024),
        (f"/api/openings/{room}/decrypt", headers(site.bidder), 64 * 1024),
        (f"/api/lots/{site.lot['id']}/evaluations", chair, 64 * 1024),
        ("/api/evaluations/any/answer", headers(site.bidder), 256 * 1024),
    ]


def test_a_huge_declared_body_is_refused_before_a_byte_of_it_is_read(site: Site) -> None:
    for path, fields, limit in _bodies(site):
        status, body = declared(site.node, path, fields)
        assert status == 413, (path, body)
        answer = httpx.Response(413, content=body).json()
        assert answer["code"] == "body_too_large" and answer["detail"]["max"] == limit


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(site: Site) -> None:
    for path, fields, limit in _bodies(site):
        status, body = chunked(site.node, path, fields, limit + 32768)
        assert status == 413, (path, body)
        assert httpx.Response(413, content=body).json()["code"] == "body_too_large"


def test_bodies_within_the_limits_still_reach_their_endpoints(site: Site) -> None:
    with httpx.Client(base_url=site.node.url, timeout=TIMEOUT) as client:
        for path, fields, limit in _bodies(site):
            sized = client.post(path, content=b"{" + b" " * (limit - 2) + b"}", headers=fields)
            assert sized.status_code not in (413, 500), (path, sized.text)
        room = {"id": "edge-room", "kind": "meeting", "title": "开标", "config": {}}
        made = client.post("/api/rooms", json=room, headers=headers(site.chair))
        assert made.status_code == 201, made.text


def test_a_body_that_stops_arriving_is_given_up_with_408(impatient: Site) -> None:
    """Headers and part of a body, then silence (a trickling attacker, or a link gone dark with
    no reset): the node answers 408 body_timeout and closes, instead of waiting on forever."""
    for i, (path, fields, _) in enumerate(_bodies(impatient)):
        sized = _head("POST", path, {**fields, "Content-Length": "1000"})
        head, part = [(sized, b'{"a": '), (sized, b""), (_chunked_head(path, fields), b"")][i % 3]
        status, body = stalled(impatient.node, head, part)
        assert status == 408, (path, body)
        answer = httpx.Response(408, content=body).json()
        assert answer["code"] == "body_timeout", answer
        assert answer["detail"]["seconds"] == float(STALL)


def _chunked_head(path: str, fields: dict[str, str]) -> bytes:
    """A chunked body's head and its first chunk, with no end."""
    return _head("POST", path, {**fields, "Transfer-Encoding": "chunked"}) + b'6\r\n{"a": \r\n'


def test_a_stalled_patch_keeps_what_arrived_and_frees_its_upload(impatient: Site) -> None:
    """A tus PATCH whose link goes dark mid-body: once given up, the bytes that arrived are the
    upload's (HEAD says so) and the next PATCH from there is taken, not 409 upload_busy."""
    bidder = {**headers(impatient.bidder), "Tus-Resumable": "1.0.0"}
    octets = {**bidder, "Content-Type": "application/offset+octet-stream"}
    with httpx.Client(base_url=impatient.node.url, timeout=TIMEOUT) as client:
        made = client.post(
            f"/api/lots/{impatient.lot['id']}/uploads",
            headers={**bidder, "Upload-Length": "100000"},
        )
        assert made.status_code == 201, made.text
        url = made.headers["location"]
        fields = {**octets, "Upload-Offset": "0", "Content-Length": "60000"}
        status, body = stalled(impatient.node, _head("PATCH", url, fields), b"x" * 40000)
        assert (status, httpx.Response(408, content=body).json()["code"]) == (408, "body_timeout")
        head = client.head(url, headers=bidder)
        assert head.headers["upload-offset"] == "40000", head.headers
        more = client.patch(url, content=b"y" * 20000, headers={**octets, "Upload-Offset": "40000"})
        assert (more.status_code, more.headers.get("upload-offset")) == (204, "60000"), more.text
        assert client.delete(url, headers=bidder).status_code == 204


def test_a_client_that_leaves_mid_body_costs_no_error_in_the_log(site: Site) -> None:
    """Headers, one byte of a 100-byte body, then the connection closed, on every kind of
    endpoint: nobody is left to answer, and the node logs no error or traceback for it (a
    cheap way to flood the operator's log otherwise)."""
    before = len(site.node.log)
    for path, fields, _ in _bodies(site):
        with _connect(site.node) as sock:
            sock.sendall(_head("POST", path, {**fields, "Content-Length": "100"}) + b"{")
    with httpx.Client(base_url=site.node.url, timeout=TIMEOUT) as client:
        for path, fields, _ in _bodies(site):  # the node has served past those requests
            assert client.post(path, content=b"{}", headers=fields).status_code < 500
    logged = "\n".join(site.node.log[before:])
    assert "Traceback" not in logged and '"level": "ERROR"' not in logged, logged[-2000:]


def test_the_node_does_not_grow_by_the_bodies_it_refuses(site: Site) -> None:
    """Ten 256 MiB bodies offered at once leave the node's memory where it was (RSS: the
    pages it holds; a node that buffered one would hold 256 MiB more)."""

    def rss() -> int:
        status = Path(f"/proc/{site.node.process.pid}/status").read_text()  # type: ignore[union-attr]
        return int(
            next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]
        )

    before = rss()
    for _ in range(10):
        assert declared(site.node, "/api/login", {})[0] == 413
    assert rss() - before < 64 * 1024  # KiB: far below one body


# bad input: a 4xx with a code, never a 500 ---------------------------------------------------


def test_bad_numbers_in_queries_and_tus_headers_are_4xx(site: Site) -> None:
    room = site.lot["room"]
    chair = headers(site.chair)
    bidder = {**headers(site.bidder), "Tus-Resumable": "1.0.0"}
    with httpx.Client(base_url=site.node.url, timeout=TIMEOUT) as client:
        for after in ("²", "99999999999999999999999", "9223372036854775807", "-1", "1e3"):
            got = client.get(f"/api/rooms/{room}/events", params={"after": after}, headers=chair)
            assert (got.status_code, got.json()["code"]) == (422, "invalid_args"), after
        assert client.get(f"/api/rooms/{room}/events?after=0", headers=chair).status_code == 200
        uploads = f"/api/lots/{site.lot['id']}/uploads"
        for length in ("²".encode(), b"\xd9\xa3", b"-1", b"1e3"):
            got = client.post(uploads, headers={**bidder, "Upload-Length": length})  # type: ignore[dict-item]
            assert (got.status_code, got.json()["code"]) == (400, "tus_header"), length
        got = client.post(uploads, headers={**bidder, "Tus-Resumable": "²".encode()})  # type: ignore[dict-item]
        assert (got.status_code, got.json()["code"]) == (412, "tus_version")
        made = client.post(uploads, headers={**bidder, "Upload-Length": "10"})
        assert made.status_code == 201, made.text
        url = made.headers["location"]
        octets = {**bidder, "Content-Type": "application/offset+octet-stream"}
        for offset in ("²".encode(), b"", b"99999999999999999999999"):
            got = client.patch(url, content=b"x", headers={**octets, "Upload-Offset": offset})  # type: ignore[dict-item]
            assert got.status_code in (400, 409) and got.json()["code"], (offset, got.text)
        assert client.delete(url, headers=bidder).status_code == 204


def test_bodies_that_are_not_json_objects_are_422(site: Site) -> None:
    room = site.lot["room"]
    chair = headers(site.chair)
    with httpx.Client(base_url=site.node.url, timeout=TIMEOUT) as client:
        targets = [
            ("/api/login", {}),
            ("/api/rooms", chair),
            ("/api/tenders", chair),
            (f"/api/openings/{room}/decrypt", headers(site.bidder)),
            (f"/api/lots/{site.lot['id']}/evaluations", chair),
        ]
        bodies = [b"{", b"\xff\xfe\x00", b"[]", b'{"challenge": 1e999999}', b'"text"', b"null"]
        for path, fields in targets:
            for body in bodies:
                got = client.post(path, content=body, headers=fields)
                assert got.status_code == 422 and got.json()["code"], (path, body, got.text)


def test_a_room_config_its_kind_cannot_start_from_is_refused(site: Site) -> None:
    chair = headers(site.chair)
    body = {"id": "broken-meeting", "kind": "meeting", "title": "会议", "config": {"roles": 3}}
    with httpx.Client(base_url=site.node.url, timeout=TIMEOUT) as client:
        got = client.post("/api/rooms", json=body, headers=chair)
        assert (got.status_code, got.json()["code"]) == (422, "invalid_config")
        assert client.get("/api/rooms").status_code == 200


# headers -------------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(site: Site) -> None:
    with httpx.Client(base_url=site.node.url, timeout=TIMEOUT) as client:
        answers = [
            client.get("/"),
            client.get("/login.html"),
            client.get("/js/login.js"),
            client.get("/api/rooms"),
            client.get("/nothing-here"),
            client.post("/api/login", content=b"{"),
        ]
    for got in answers:
        policy = got.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy, got.url
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert f"ws://127.0.0.1:{site.node.port}" in policy
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["referrer-policy"] == "same-origin"
    status, _ = declared(site.node, "/api/login", {})
    assert status == 413  # the refusal before the app is covered by the test above


# login floods --------------------------------------------------------------------------------


def login_body(base: str, person: Person, client: httpx.Client) -> dict[str, Any]:
    challenge = client.post(base + "/api/login/challenge").json()
    signature = p.sign(
        person.key, login.signed_message(challenge["origin"], challenge["challenge"])
    )
    return {
        "challenge": challenge["challenge"],
        "certificate": base64.b64encode(person.der()).decode(),
        "chain": [
            base64.b64encode(c.public_bytes(p.serialization_der())).decode() for c in person.chain
        ],
        "signature": base64.b64encode(signature).decode(),
    }


def attempt(node: Node, person: Person, source: str = "127.0.0.1", **extra: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        body = login_body(node.url, person, client)
        return client.post(node.url + "/api/login", json=body, headers=extra)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Node, World]]:
    node, world = node_with_people(
        tmp_path, BIDROOM_LOGINS_PER_MINUTE="5", BIDROOM_CERTIFICATE_LOGINS_PER_MINUTE="3"
    )
    yield node, world
    node.stop()


def refused(answer: httpx.Response, scope: str) -> bool:
    body = answer.json()
    return (
        answer.status_code == 429
        and body["code"] == "login_rate_limited"
        and body["detail"]["scope"] == scope
        and int(answer.headers["retry-after"]) >= 1
    )


def forged(node: Node, victim: Person, source: str) -> httpx.Response:
    """An answer with the victim's public certificate and a signature that is not theirs."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        body = {**login_body(node.url, victim, client), "signature": "AAAA" * 16}
        return client.post(node.url + "/api/login", json=body)


def test_a_login_flood_is_refused_while_others_still_sign_in(guarded: tuple[Node, World]) -> None:
    node, world = guarded
    flooder, other = world.people["海洁"], world.people["蓝天"]
    assert [attempt(node, flooder).status_code for _ in range(4)] == [200] * 4
    assert attempt(node, other).status_code == 200  # another certificate, same address: in
    assert refused(attempt(node, other), "address")  # the address's 6th (5 a minute)
    # a claimed X-Forwarded-For changes nothing (no BIDROOM_TRUSTED_PROXIES)...
    assert refused(attempt(node, other, **{"X-Forwarded-For": "10.9.8.7"}), "address")
    # ...while a client at another address still signs in
    assert attempt(node, other, source="127.0.0.2").status_code == 200


def test_a_competitor_holding_a_bidders_certificate_cannot_lock_them_out(
    guarded: tuple[Node, World],
) -> None:
    """Certificates are public (every signed act of an opening carries one). Failed answers
    with the victim's certificate were once charged to the victim's own bucket: ten a minute
    from anywhere kept them from signing in to the opening. Now the competitor is slowed down
    and the victim signs in."""
    node, world = guarded
    victim = world.people["海洁"]
    failures = [forged(node, victim, "127.0.0.3") for _ in range(4)]
    assert [f.status_code for f in failures[:3]] == [401] * 3
    assert refused(failures[3], "certificate")  # the competitor's 4th failure (3 a minute)
    assert attempt(node, victim, source="127.0.0.4").status_code == 200
    assert attempt(node, victim, source="127.0.0.3").status_code == 200  # even from there


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(tmp_path: Path) -> None:
    node, world = node_with_people(
        tmp_path, BIDROOM_LOGINS_PER_MINUTE="2", BIDROOM_TRUSTED_PROXIES='["127.0.0.1"]'
    )
    try:
        bidder = world.people["海洁"]
        for client in ("10.0.0.1", "10.0.0.2"):
            forwarded = {"X-Forwarded-For": client}
            assert [attempt(node, bidder, **forwarded).status_code for _ in range(2)] == [200] * 2
            assert refused(attempt(node, bidder, **forwarded), "address")
        # one host's /64 is one client: its addresses share a bucket
        one_host = [{"X-Forwarded-For": f"2001:db8:1:2::{n}"} for n in range(1, 4)]
        assert [attempt(node, bidder, **h).status_code for h in one_host[:2]] == [200] * 2
        assert refused(attempt(node, bidder, **one_host[2]), "address")
    finally:
        node.stop()
