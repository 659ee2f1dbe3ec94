"""The browser's sealed-bid envelope (web/js/envelope.js, hpke.js) against the Python reference.

Debian's chromium (/usr/bin/chromium) loads the modules from a real node (`python -m bidroom
serve`, tests/nodes.py) through Playwright's sync API. Keys and certificates are made in Python
and handed to the page as PKCS#8 DER, imported there non-extractable. An envelope sealed on one
side is opened and verified on the other, HPKE meets RFC 9180's vectors, and a tampered envelope
fails in the browser with the code ca/envelope.py gives. Missing chromium fails: a browser test
that skips proves nothing.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, checked, chromium_page, require_chromium
from certs import certificate
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from envelopes import forge, split
from nodes import SECRET, Node, bidroom
from playwright.sync_api import Page

from ca import envelope
from ca import primitives as p
from ca.errors import EnvelopeError

TIMEOUT_MS = 30_000
MiB = 1 << 20
SIZE = 5 * MiB // 2 + 12345  # three chunks, the last one short
LOT = "浙舟-ZS-2026-0417/1"
CLIENT = {"device": "测试终端", "name": "bidroom web", "version": "1"}
VECTORS = Path(__file__).resolve().parents[1] / "vectors"

A31 = json.loads((VECTORS / "hpke-rfc9180-a31.json").read_text())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def pkcs8(key: p.PrivateKey) -> str:
    return b64(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass(frozen=True)
class Party:
    """A key as both sides need it: the Python key, its certificate, its PKCS#8 for the page."""

    key: p.PrivateKey
    cert: bytes

    @property
    def sealer(self) -> envelope.Sealer:
        return envelope.Sealer(self.cert, self.key)

    def page_key(self) -> dict[str, str]:
        return {"pkcs8": pkcs8(self.key), "cert": b64(self.cert)}


@pytest.fixture(scope="module")
def parties() -> dict[str, Party]:
    ec_key, rsa_key = p.generate_ec_key(), p.generate_rsa_key()
    return {
        "ec": Party(ec_key, certificate(ec_key, "六横海洁环境服务有限公司")),
        "rsa": Party(rsa_key, certificate(rsa_key, "东港城市服务集团有限公司")),
    }


@pytest.fixture(scope="module")
def opening() -> p.EcPrivateKey:
    return p.generate_ec_key()


def opening_key(key: p.EcPrivateKey) -> dict[str, str]:
    """The opening key for the page: no certificate, its SubjectPublicKeyInfo instead."""
    return {"pkcs8": pkcs8(key), "spki": b64(p.public_der(key.public_key()))}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node | None]:
    """A real node serving web/; none when chromium is missing (each test then fails)."""
    if not CHROMIUM.is_file():
        yield None
        return
    env = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
    }
    migrated = bidroom("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    started = Node(env)
    try:
        yield started.start()
    finally:
        started.kill()
        # Node's log pump reads stderr to EOF on a thread and never closes the pipe: let it
        # finish, then close it here (an unclosed pipe is a ResourceWarning, an error).
        for thread in threading.enumerate():
            if thread.name.endswith("(_pump)"):
                thread.join(10)
        if started.process is not None and started.process.stderr is not None:
            started.process.stderr.close()


SETUP = """async () => {
  const [E, H, B] = await Promise.all(
    [import("/js/envelope.js"), import("/js/hpke.js"), import("/js/bytes.js")]);
  const blobB64 = async (blob) => B.toBase64(new Uint8Array(await blob.arrayBuffer()));
  window.T = {E, H, B, blobB64};
  return typeof E.seal === "function" && typeof H.seal === "function";
}"""


@pytest.fixture(scope="module")
def session(node: Node | None) -> Iterator[tuple[Page, list[str]] | None]:
    """One page on the node's origin with the modules loaded, and the page's errors."""
    if node is None:
        yield None
        return
    with chromium_page(TIMEOUT_MS) as (page, errors):
        # Any same-origin page will do (127.0.0.1 is a secure context: WebCrypto is there).
        page.goto(node.url + "/css/app.css")
        assert page.evaluate(SETUP) is True
        yield page, errors


@pytest.fixture
def browser_page(session: tuple[Page, list[str]] | None) -> Iterator[Page | None]:
    yield from checked(session)


def ready(browser_page: Page | None) -> Page:
    """The test's page; fails (never skips) when chromium is missing."""
    require_chromium()
    assert browser_page is not None
    return browser_page


# (a) HPKE and the building blocks -----------------------------------------------------------

HPKE_CHECK = """async ({a31, vector}) => {
  const {H, B} = window.T;
  const x = (v) => B.fromHex(v);
  const hex = (v) => B.toHex(v);
  const out = {derived: {}, a31: {}, vector: []};
  for (const [ikm, name] of [["ikmE", "e"], ["ikmR", "r"]]) {
    const pair = await H.deriveKeyPair(x(a31[ikm]));
    out.derived[name] = {sk: hex(pair.scalar), pk: hex(pair.publicKey),
                         extractable: pair.privateKey.extractable};
  }
  const recipient = await H.deriveKeyPair(x(a31.ikmR));
  const sealed = await H.seal(x(a31.pkRm), x(a31.info), x(a31.aad), x(a31.pt),
                              {aeadId: H.AEAD_AES_128_GCM, ikmE: x(a31.ikmE)});
  out.a31 = {enc: hex(sealed.enc), ct: hex(sealed.ciphertext),
             pt: hex(await H.open(sealed.enc, recipient.privateKey, recipient.publicKey,
                                  x(a31.info), x(a31.aad), sealed.ciphertext,
                                  {aeadId: H.AEAD_AES_128_GCM}))};
  const r = await H.deriveKeyPair(x(vector.ikmR));
  const {sharedSecret} = await H.encap(r.publicKey, x(vector.ikmE));
  const ctx = await H.keySchedule(sharedSecret, x(vector.info), H.AEAD_AES_256_GCM);
  out.schedule = {pkRm: hex(r.publicKey), shared_secret: hex(sharedSecret), key: hex(ctx.key),
                  base_nonce: hex(ctx.baseNonce)};
  for (const e of vector.encryptions) {
    const s = await H.seal(r.publicKey, x(vector.info), x(e.aad), x(vector.pt),
                           {ikmE: x(vector.ikmE)});
    const opened = await H.open(x(vector.enc), r.privateKey, r.publicKey, x(vector.info),
                                x(e.aad), x(e.ct));
    out.vector.push({enc: hex(s.enc), ct: hex(s.ciphertext), pt: hex(opened)});
  }
  // fresh ephemeral keys: two seals differ and both open; an altered one does not
  const one = await H.seal(r.publicKey, x("01"), x("02"), x("0303"));
  const two = await H.seal(r.publicKey, x("01"), x("02"), x("0303"));
  out.fresh = hex(one.enc) !== hex(two.enc)
    && hex(await H.open(two.enc, r.privateKey, r.publicKey, x("01"), x("02"), two.ciphertext))
       === "0303";
  const bent = two.ciphertext.slice();
  bent[0] ^= 1;
  const codes = [];
  for (const args of [[two.enc, bent], [one.enc, two.ciphertext],
                      [new Uint8Array(65).fill(0, 1).fill(4, 0, 1), two.ciphertext]]) {
    try {
      await H.open(args[0], r.privateKey, r.publicKey, x("01"), x("02"), args[1]);
      codes.push("opened");
    } catch (e) { codes.push(e.code); }
  }
  out.refused = codes;
  return out;
}"""


def test_browser_hpke_meets_rfc_9180_and_our_vector(browser_page: Page | None) -> None:
    page = ready(browser_page)
    vector = json.loads((VECTORS / "hpke-p256-sha256-aes256gcm.json").read_text())
    got = page.evaluate(HPKE_CHECK, {"a31": A31, "vector": vector})
    assert got["derived"]["e"] == {"sk": A31["skEm"], "pk": A31["pkEm"], "extractable": False}
    assert got["derived"]["r"] == {"sk": A31["skRm"], "pk": A31["pkRm"], "extractable": False}
    assert got["a31"] == {"enc": A31["pkEm"], "ct": A31["ct"], "pt": A31["pt"]}
    assert got["schedule"] == {k: vector[k] for k in ("pkRm", "shared_secret", "key", "base_nonce")}
    assert got["vector"] == [
        {"enc": vector["enc"], "ct": e["ct"], "pt": vector["pt"]} for e in vector["encryptions"]
    ]
    assert got["fresh"] is True
    assert got["refused"] == ["hpke_open", "hpke_open", "hpke_bad_enc"]


BYTES_CHECK = """async ({values, sizes}) => {
  const {B} = window.T;
  const canon = values.map((v) => B.toBase64(B.canonical(v)));
  const sha = [];
  for (const size of sizes) {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
    const h = new B.Sha256();
    for (let at = 0, step = 1; at < size; at += step, step = (step * 3 + 1) % 997 + 1) {
      h.update(data.subarray(at, at + step));
    }
    const whole = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    sha.push(B.toHex(h.digest()) === B.toHex(whole));
  }
  const refused = [];
  for (const text of ['{"b":1,"a":2}', '{"a": 1}', '{"a":1.0}', '{"a":"\\\\u00e9"}', '[1,]']) {
    try { B.parseCanonical(B.utf8(text)); refused.push(false); } catch { refused.push(true); }
  }
  return {canon, sha, refused};
}"""


def test_canonical_json_and_sha256_match_python(browser_page: Page | None) -> None:
    page = ready(browser_page)
    """Key order by code point, escapes, non-ASCII; the incremental SHA-256 at block edges."""
    values: list[dict[str, Any]] = [
        {"b": 1, "a": [True, False, None, -7, 0], "": {}},
        {"\U0001f600": 1, "\uffff": 2, "é": 3, "z": 4, "Z": 5, "\u2028": "\u2029"},
        {"s": 'quote " backslash \\ \n\r\t\b\f \x00\x1f\x7f 六横 \U0001f600 </script>'},
        {"lot": LOT, "nested": [{"y": 1, "x": [2, {"k": "v"}]}], "big": 2**53 - 1},
    ]
    sizes = [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 250_001]
    got = page.evaluate(BYTES_CHECK, {"values": values, "sizes": sizes})
    assert [unb64(c) for c in got["canon"]] == [envelope.canonical(v) for v in values]
    assert got["sha"] == [True] * len(sizes)
    assert got["refused"] == [True] * 5


# (b) sealed in the browser, opened in Python ------------------------------------------------

SEAL = """async ({plain, bidder, opening, lot, client}) => {
  const {E, B, blobB64} = window.T;
  const keys = await E.importPrivateKey(B.fromBase64(bidder.pkcs8));
  const progress = [];
  const blob = await E.seal(new Blob([B.fromBase64(plain)]), {
    lot, client, certificateDer: B.fromBase64(bidder.cert), signingKey: keys.sign,
    openingKey: B.fromBase64(opening.spki),
  }, (done, total) => progress.push([done, total]));
  const proof = await E.verify(blob);
  return {
    envelope: await blobB64(blob), progress, kind: keys.kind,
    extractable: [keys.sign.extractable, keys.unwrap.extractable],
    verified: {lot: proof.header.lot, size: proof.plaintextSize, count: proof.chunkCount},
  };
}"""


def open_in_python(data: bytes, key: p.PrivateKey, tmp_path: Path) -> bytes:
    target = tmp_path / "bid.bin"
    envelope.open_to(io.BytesIO(data), target, key)
    opened = target.read_bytes()
    target.unlink()
    return opened


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_sealed_in_the_browser_opens_in_python(
    kind: str,
    browser_page: Page | None,
    parties: dict[str, Party],
    opening: p.EcPrivateKey,
    tmp_path: Path,
) -> None:
    page = ready(browser_page)
    bidder = parties[kind]
    plain = os.urandom(SIZE)
    got = page.evaluate(
        SEAL,
        {
            "plain": b64(plain),
            "bidder": bidder.page_key(),
            "opening": opening_key(opening),
            "lot": LOT,
            "client": CLIENT,
        },
    )
    assert got["kind"] == {"ec": "P-256", "rsa": "RSA"}[kind]
    assert got["extractable"] == [False, False]
    assert got["progress"] == [[MiB, SIZE], [2 * MiB, SIZE], [SIZE, SIZE]]
    assert got["verified"] == {"lot": LOT, "size": SIZE, "count": 3}
    data = unb64(got["envelope"])

    proof = envelope.verify(io.BytesIO(data))
    assert (proof.plaintext_size, proof.chunk_count) == (SIZE, 3)
    assert proof.header.lot == LOT and proof.header.client == CLIENT
    assert proof.header.bidder_cert == bidder.cert
    assert [e["to"] for e in proof.header.recipients] == ["bidder", "opening"]
    alg = {"ec": "hpke-p256-sha256-aes256gcm", "rsa": "rsa-oaep-sha256"}[kind]
    assert proof.header.recipients[0]["alg"] == alg
    assert open_in_python(data, bidder.key, tmp_path) == plain
    assert open_in_python(data, opening, tmp_path) == plain
    assert plain[:4096] not in data


# (c) sealed in Python, opened in the browser ------------------------------------------------

OPEN = """async ({data, key}) => {
  const {E, B, blobB64} = window.T;
  const keys = await E.importPrivateKey(B.fromBase64(key.pkcs8));
  const owner = key.cert ? {certificateDer: B.fromBase64(key.cert)}
                         : {publicKey: B.fromBase64(key.spki)};
  const progress = [];
  let plain = null;
  try {
    const blob = await E.open(new Blob([B.fromBase64(data)]),
                              {privateKey: keys.unwrap, ...owner},
                              (done) => progress.push(done));
    plain = await blobB64(blob);
  } catch (error) {
    return {plain, progress, code: error.code ?? null, message: String(error)};
  }
  return {plain, progress, code: null};
}"""

VERIFY = """async ({data}) => {
  const {E, B} = window.T;
  try {
    const proof = await E.verify(new Blob([B.fromBase64(data)]));
    return {size: proof.plaintextSize, count: proof.chunkCount, digest: proof.bodyDigest,
            client: proof.header.client, code: null};
  } catch (error) {
    return {code: error.code ?? null, detail: error.detail ?? null, message: String(error)};
  }
}"""


def sealed_in_python(plain: bytes, bidder: Party, opening: p.EcPrivateKey) -> bytes:
    out = io.BytesIO()
    envelope.seal(
        io.BytesIO(plain),
        out,
        lot=LOT,
        sealer=bidder.sealer,
        opening_key=opening.public_key(),
        client=CLIENT,
    )
    return out.getvalue()


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_sealed_in_python_opens_in_the_browser(
    kind: str, browser_page: Page | None, parties: dict[str, Party], opening: p.EcPrivateKey
) -> None:
    page = ready(browser_page)
    plain = os.urandom(SIZE)
    data = sealed_in_python(plain, parties[kind], opening)
    for key in (parties[kind].page_key(), opening_key(opening)):
        got = page.evaluate(OPEN, {"data": b64(data), "key": key})
        assert got["code"] is None, got
        assert unb64(got["plain"]) == plain
        assert got["progress"] == [MiB, 2 * MiB, SIZE]
    proof = envelope.verify(io.BytesIO(data))
    got = page.evaluate(VERIFY, {"data": b64(data)})
    assert got == {
        "size": SIZE,
        "count": 3,
        "digest": proof.body_digest,
        "client": CLIENT,
        "code": None,
    }


def test_an_empty_bid_round_trips(
    browser_page: Page | None, parties: dict[str, Party], opening: p.EcPrivateKey, tmp_path: Path
) -> None:
    page = ready(browser_page)
    """One final, empty chunk, both ways."""
    bidder = parties["ec"]
    got = page.evaluate(
        SEAL,
        {
            "plain": "",
            "bidder": bidder.page_key(),
            "opening": opening_key(opening),
            "lot": LOT,
            "client": {},
        },
    )
    assert open_in_python(unb64(got["envelope"]), opening, tmp_path) == b""
    data = sealed_in_python(b"", bidder, opening)
    opened = page.evaluate(OPEN, {"data": b64(data), "key": bidder.page_key()})
    assert (opened["code"], opened["plain"]) == (None, "")


# (d) tampering: refused in the browser, with the code Python gives ---------------------------


def flip(data: bytes, at: int) -> bytes:
    bent = bytearray(data)
    bent[at] ^= 0x10
    return bytes(bent)


def _chunk(index: int) -> Callable[[bytes], bytes]:
    def tamper(data: bytes) -> bytes:
        head, records, _ = split(data)
        return flip(data, len(head) + sum(map(len, records[:index])) + 5 + 1000)

    return tamper


def _records(order: Callable[[list[bytes]], list[bytes]]) -> Callable[[bytes], bytes]:
    def tamper(data: bytes) -> bytes:
        head, records, trailer = split(data)
        return head + b"".join(order(records)) + trailer

    return tamper


TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "chunk 0 flipped": _chunk(0),
    "chunk 1 flipped": _chunk(1),
    "final chunk flipped": _chunk(2),
    "chunk dropped": _records(lambda r: [r[0], r[2]]),
    "chunks swapped": _records(lambda r: [r[1], r[0], r[2]]),
    "chunk repeated": _records(lambda r: [r[0], r[0], r[1], r[2]]),
    "body truncated": _records(lambda r: r[:2]),
    "chunk marked final": _records(lambda r: [r[0], b"\x02" + r[1][1:]]),
    "not an envelope": lambda data: b"X" + data[1:],
    "unknown version": lambda data: data[:9] + b"\x02" + data[10:],
    "header flipped": lambda data: flip(data, len(split(data)[0]) // 2),
    "trailer flipped": lambda data: flip(data, len(data) - 20),
    "data after trailer": lambda data: data + b"\0",
}


def python_code(data: bytes, key: p.PrivateKey, tmp_path: Path) -> str:
    with pytest.raises(EnvelopeError) as caught:
        envelope.open_to(io.BytesIO(data), tmp_path / "bid.bin", key)
    return caught.value.code


@pytest.fixture(scope="module")
def sealed_ec(parties: dict[str, Party], opening: p.EcPrivateKey) -> bytes:
    return sealed_in_python(os.urandom(SIZE), parties["ec"], opening)


def test_a_flipped_bit_in_a_chunk_is_refused_without_plaintext(
    browser_page: Page | None, parties: dict[str, Party], sealed_ec: bytes, tmp_path: Path
) -> None:
    page = ready(browser_page)
    bent = _chunk(1)(sealed_ec)
    assert python_code(bent, parties["ec"].key, tmp_path) == "envelope_chunk_altered"
    got = page.evaluate(OPEN, {"data": b64(bent), "key": parties["ec"].page_key()})
    assert got["code"] == "envelope_chunk_altered", got
    assert got["plain"] is None, "no plaintext is handed over when a chunk fails"
    assert got["progress"] == [MiB], "chunk 0 decrypted, then the altered chunk 1 stopped all"
    verified = page.evaluate(VERIFY, {"data": b64(bent)})
    assert verified["code"] == "envelope_body_digest", verified


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampering_is_named_as_python_names_it(
    name: str,
    browser_page: Page | None,
    parties: dict[str, Party],
    opening: p.EcPrivateKey,
    sealed_ec: bytes,
    tmp_path: Path,
) -> None:
    page = ready(browser_page)
    bent = TAMPERINGS[name](sealed_ec)
    expected = python_code(bent, opening, tmp_path)
    got = page.evaluate(OPEN, {"data": b64(bent), "key": opening_key(opening)})
    assert (got["code"], got["plain"]) == (expected, None), got


def test_a_key_that_is_not_a_recipient_is_refused(
    browser_page: Page | None, parties: dict[str, Party], sealed_ec: bytes
) -> None:
    page = ready(browser_page)
    got = page.evaluate(OPEN, {"data": b64(sealed_ec), "key": parties["rsa"].page_key()})
    assert (got["code"], got["plain"]) == ("envelope_wrong_recipient", None)


SEAL_REFUSED = """async ({bidder, other, opening}) => {
  const {E, B} = window.T;
  const keys = await E.importPrivateKey(B.fromBase64(other.pkcs8));
  try {
    await E.seal(new Blob([B.utf8("bid")]), {
      lot: "L", certificateDer: B.fromBase64(bidder.cert), signingKey: keys.sign,
      openingKey: B.fromBase64(opening.spki),
    });
    return "sealed";
  } catch (error) {
    return error.code ?? String(error);
  }
}"""


def test_sealing_with_a_key_not_the_certificates_is_refused(
    browser_page: Page | None, parties: dict[str, Party], opening: p.EcPrivateKey
) -> None:
    page = ready(browser_page)
    other = p.generate_ec_key()
    args = {
        "bidder": parties["ec"].page_key(),
        "other": {"pkcs8": pkcs8(other)},
        "opening": opening_key(opening),
    }
    assert page.evaluate(SEAL_REFUSED, args) == "envelope_signature"


def test_the_published_envelope_vector_opens_in_the_browser(browser_page: Page | None) -> None:
    page = ready(browser_page)
    vector = json.loads((VECTORS / "envelope-v1-p256.json").read_text())
    plain = bytes((7 * i + 3) % 251 for i in range(vector["plaintext_size"]))
    opening = p.load_private_key(unb64(vector["opening_key_pkcs8"]))
    keys = [
        {"pkcs8": vector["bidder_key_pkcs8"], "cert": vector["bidder_cert"]},
        {"pkcs8": vector["opening_key_pkcs8"], "spki": b64(p.public_der(opening.public_key()))},
    ]
    for key in keys:
        got = page.evaluate(OPEN, {"data": vector["envelope"], "key": key})
        assert got["code"] is None, got
        assert unb64(got["plain"]) == plain
    verified = page.evaluate(VERIFY, {"data": vector["envelope"]})
    assert verified["digest"] == vector["body_digest"]


def _entry(index: int, **changes: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def bend(fields: dict[str, Any]) -> dict[str, Any]:
        entries = [dict(e) for e in fields["recipients"]]
        entries[index].update(changes)
        return {**fields, "recipients": entries}

    return bend


def _set_bit(text: str) -> str:
    """The same bytes, non-canonical base64: an unused bit of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    at = len(text.rstrip("=")) - 1
    return text[:at] + alphabet[alphabet.index(text[at]) | 1] + text[at + 1 :]


Forged = Callable[[envelope.Sealer, p.EcPublicKey], bytes]


@functools.cache
def _odd_rsa(kind: str) -> envelope.Sealer:
    """An RSA bidder the format refuses: exponent 3, or 4104 bits (over 4096)."""
    if kind == "e3":
        key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    else:
        key = p.generate_rsa_key(4104)
    return envelope.Sealer(certificate(key, "某某公司"), key)


def _lone_surrogate(fields: dict[str, Any]) -> bytes:
    return envelope.canonical({**fields, "lot": "LOT@"}).replace(b"LOT@", b"\\ud800")


def _missing_and_extra(fields: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in fields.items() if k != "client"}, "zz": 1, "aa": 2}


STRICT: dict[str, tuple[Forged, str]] = {
    "1-byte chunks": (lambda s, o: forge(s, o, [b"a", b"b", b"c"]), "envelope_chunk_short"),
    "empty final chunk": (lambda s, o: forge(s, o, [b"x" * MiB, b""]), "envelope_chunk_empty"),
    "extra preamble field": (
        lambda s, o: forge(s, o, [b"bid"], preamble=lambda f: {**f, "x": "1"}),
        "envelope_header_field",
    ),
    "no client": (
        lambda s, o: forge(s, o, [b"bid"], preamble=lambda f: {**f, "client": None}),
        "envelope_header_field",
    ),
    "empty lot": (lambda s, o: forge(s, o, [b"bid"], lot=""), "envelope_header_field"),
    "to outside": (
        lambda s, o: forge(s, o, [b"bid"], preamble=_entry(1, to="custodian")),
        "envelope_header_field",
    ),
    "alg outside": (
        lambda s, o: forge(s, o, [b"bid"], preamble=_entry(1, alg="hpke-x25519")),
        "envelope_header_field",
    ),
    "upper-case key id": (
        lambda s, o: forge(
            s, o, [b"bid"], preamble=lambda f: _entry(1, key=f["recipients"][1]["key"].upper())(f)
        ),
        "envelope_header_field",
    ),
    "bidder entry for another key": (
        lambda s, o: forge(
            s, o, [b"bid"], preamble=lambda f: _entry(0, key=f["recipients"][1]["key"])(f)
        ),
        "envelope_bidder_key",
    ),
    "padding bits set": (
        lambda s, o: forge(
            s, o, [b"bid"], preamble=lambda f: {**f, "nonce_prefix": _set_bit(f["nonce_prefix"])}
        ),
        "envelope_base64",
    ),
    "extra trailer field": (
        lambda s, o: forge(s, o, [b"bid"], trailer=lambda t: {**t, "x": 1}),
        "envelope_trailer",
    ),
    "signature padding bits": (
        lambda s, o: forge(
            s, o, [b"bid"], trailer=lambda t: {**t, "signature": _set_bit(t["signature"])}
        ),
        "envelope_base64",
    ),
    "html-safe escape": (
        lambda s, o: forge(
            s,
            o,
            [b"bid"],
            lot="R&D",
            encode=lambda f: envelope.canonical(f).replace(b"&", b"\\u0026"),
        ),
        "envelope_header",
    ),
    "rsa exponent 3": (
        lambda s, o: forge(_odd_rsa("e3"), o, [b"bid"]),
        "envelope_header_field",
    ),
    "rsa of 4104 bits": (
        lambda s, o: forge(_odd_rsa("4104"), o, [b"bid"]),
        "envelope_header_field",
    ),
    "bytes after the certificate": (
        lambda s, o: forge(
            s,
            o,
            [b"bid"],
            preamble=lambda f: {**f, "bidder_cert": envelope._b64(s.certificate + b"\0")},
        ),
        "envelope_header",
    ),
    "escaped lone surrogate": (
        lambda s, o: forge(s, o, [b"bid"], encode=_lone_surrogate),
        "envelope_header",
    ),
    "a field missing, two extra": (
        lambda s, o: forge(s, o, [b"bid"], preamble=_missing_and_extra),
        "envelope_header_field",
    ),
    "a fraction": (
        lambda s, o: forge(
            s, o, [b"bid"], encode=lambda f: envelope.canonical(f).replace(b'"v":1', b'"v":1.0')
        ),
        "envelope_header",
    ),
}


@pytest.mark.parametrize("name", list(STRICT))
def test_the_strict_rules_refuse_in_the_browser_as_in_python(
    name: str,
    browser_page: Page | None,
    parties: dict[str, Party],
    opening: p.EcPrivateKey,
    tmp_path: Path,
) -> None:
    """Each bent rule, signed by the bidder as it is: the same code on both sides, opening and
    verifying without a key (docs/envelope.md "Order of checks")."""
    page = ready(browser_page)
    make, code = STRICT[name]
    bent = make(parties["ec"].sealer, opening.public_key())
    assert python_code(bent, opening, tmp_path) == code
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify(io.BytesIO(bent))
    assert caught.value.code == code
    got = page.evaluate(OPEN, {"data": b64(bent), "key": opening_key(opening)})
    assert (got["code"], got["plain"]) == (code, None), got
    verified = page.evaluate(VERIFY, {"data": b64(bent)})
    assert verified["code"] == code, verified
    assert verified["detail"] == (caught.value.detail or None), verified


def test_fewer_than_14_bytes_are_truncated_in_the_browser_too(browser_page: Page | None) -> None:
    page = ready(browser_page)
    for start in (b"", b"NOTANENV", b"X" * 13):
        verified = page.evaluate(VERIFY, {"data": b64(start)})
        assert verified["code"] == "envelope_truncated", verified
    assert page.evaluate(VERIFY, {"data": b64(b"X" * 14)})["code"] == "envelope_header"


def test_strict_rules_still_take_every_good_envelope(
    browser_page: Page | None, parties: dict[str, Party], opening: p.EcPrivateKey
) -> None:
    """An RSA bidder's envelope, a lot with & < > and non-ASCII, by the hand sealer: taken."""
    page = ready(browser_page)
    for party in parties.values():
        good = forge(party.sealer, opening.public_key(), [b"x" * MiB, b"y"], lot="R&D <标段>/1")
        verified = page.evaluate(VERIFY, {"data": b64(good)})
        assert verified["code"] is None, verified
        got = page.evaluate(OPEN, {"data": b64(good), "key": party.page_key()})
        assert got["code"] is None, got


def test_the_published_rsa_envelope_vector_opens_in_the_browser(
    browser_page: Page | None,
) -> None:
    page = ready(browser_page)
    vector = json.loads((VECTORS / "envelope-v1-rsa.json").read_text())
    plain = bytes((7 * i + 3) % 251 for i in range(vector["plaintext_size"]))
    opening = p.load_private_key(unb64(vector["opening_key_pkcs8"]))
    keys = [
        {"pkcs8": vector["bidder_key_pkcs8"], "cert": vector["bidder_cert"]},
        {"pkcs8": vector["opening_key_pkcs8"], "spki": b64(p.public_der(opening.public_key()))},
    ]
    for key in keys:
        got = page.evaluate(OPEN, {"data": vector["envelope"], "key": key})
        assert got["code"] is None, got
        assert unb64(got["plain"]) == plain
    verified = page.evaluate(VERIFY, {"data": vector["envelope"]})
    assert verified["digest"] == vector["body_digest"]
