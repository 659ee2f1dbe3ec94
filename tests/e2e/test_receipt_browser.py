"""A bidder checks an audit receipt in the browser (web/receipt.html, receipt.js, tsp.js).

The receipt is a real one: a database migrated, room events recorded, `bidroom audit integrate`
(a checkpoint signed and time-stamped by the built-in TSA) and `bidroom audit receipt`. A real
node on that database and var directory serves the page, which prefills the log's verifier key
from GET /api/audit/checkpoint. Debian's chromium runs it through Playwright. The page must say
what Python's bidroom.receipts.check says: verified with the entry's action, or the same code.
Missing chromium fails: a browser test that skips proves nothing.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, checked, chromium_page, require_chromium
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nodes import SECRET, Node, bidroom
from playwright.sync_api import Page

from bidroom import audit, receipts, timestamps
from bidroom.broker import LocalBroker
from bidroom.hub import Hub
from bidroom.meeting import Meeting
from bidroom.metrics import Metrics
from bidroom.room import Actor, Command
from bidroom.settings import load_settings
from bidroom.store import AUDIT, RoomRecord, Store, create_engine
from ca import checkpoint, merkle, tsa
from ca import primitives as p
from ca.errors import CryptoError

TIMEOUT_MS = 15_000
CHAIR = Actor("cert:ab12", "王敏", "chair")
INDEX = 3


LEGACY = audit.Entry(
    dt.datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=dt.UTC),
    "uscc:91330903MA2B7H1X6Q",
    "auth.login",
    None,
    None,
    {"certificate": "ab" * 32},
    0,
)


def record_some_events(url: str) -> None:
    """Entry 0 as an integrator before salts wrote it (version 1), then six room events."""

    async def run() -> None:
        engine = create_engine(url)
        store = Store(engine)
        async with engine.begin() as conn:
            await conn.execute(
                AUDIT.insert().values(
                    idx=0,
                    at=LEGACY.at,
                    actor=LEGACY.actor,
                    action=LEGACY.action,
                    objects=dict(LEGACY.objects),
                    leaf=merkle.leaf_hash(audit.encode(LEGACY)),
                )
            )
        await store.create_room(
            RoomRecord("lot-1", "meeting", "开标会", {}, dt.datetime.now(dt.UTC))
        )
        hub = Hub(store, LocalBroker(), {"meeting": Meeting()}, node="n1", metrics=Metrics())
        await hub.execute("lot-1", Command("meeting.open"), CHAIR)
        for n in range(5):
            await hub.execute("lot-1", Command("meeting.announce", {"text": f"#{n}"}), CHAIR)
        await engine.dispose()

    asyncio.run(run())


def receipt_of(index: int, tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    out = tmp / f"receipt-{index}.json"
    made_receipt = bidroom("audit", "receipt", str(index), "-o", str(out), env=env)
    assert made_receipt.returncode == 0, made_receipt.stderr
    receipt: dict[str, Any] = json.loads(out.read_text())
    return receipt


@dataclass(frozen=True)
class Made:
    receipt: dict[str, Any]  # version 2, its entry salted
    legacy: dict[str, Any]  # version 1, made before salts
    var: Path
    node: Node | None

    @property
    def root_pem(self) -> str:
        return (self.var / "tsa" / "root.pem").read_text()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    """A real receipt from the CLI, and a node serving web/ on the same log (none without
    chromium: each test then fails)."""
    tmp = tmp_path_factory.mktemp("receipt")
    env = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_VAR_DIR": str(tmp / "var"),
        # The log's name, fixed: the node's default would follow its port, the CLI's would not.
        "BIDROOM_AUDIT_ORIGIN": "bidroom.test/audit",
    }
    migrated = bidroom("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    record_some_events(env["BIDROOM_DATABASE_URL"])
    done = bidroom("audit", "integrate", env=env)
    assert done.returncode == 0 and "checkpoint 7 signed" in done.stdout, done.stderr
    receipt, legacy = (receipt_of(index, tmp, env) for index in (INDEX, 0))
    # A receipt made before salts: version 1, its entry version 1 (and otherwise the same).
    legacy = {**legacy, "version": 1}
    if not CHROMIUM.is_file():
        yield Made(receipt, legacy, tmp / "var", None)
        return
    started = Node(env)
    try:
        yield Made(receipt, legacy, tmp / "var", started.start())
    finally:
        started.kill()
        for thread in threading.enumerate():
            if thread.name.endswith("(_pump)"):
                thread.join(10)
        if started.process is not None and started.process.stderr is not None:
            started.process.stderr.close()


@pytest.fixture(scope="module")
def session(made: Made) -> Iterator[tuple[Page, list[str]] | None]:
    if made.node is None:
        yield None
        return
    with chromium_page(TIMEOUT_MS) as (page, errors):
        yield page, errors


@pytest.fixture
def browser_page(session: tuple[Page, list[str]] | None) -> Iterator[Page | None]:
    yield from checked(session)


def ready(browser_page: Page | None, made: Made) -> Page:
    """The page freshly loaded from the node, the verifier key prefilled from the platform."""
    require_chromium()
    assert browser_page is not None and made.node is not None
    browser_page.goto(made.node.url + "/receipt.html")
    browser_page.wait_for_function(
        "key => document.getElementById('verifier-key').value === key",
        arg=made.receipt["verifier_key"],
    )
    return browser_page


def check(page: Page, receipt: dict[str, Any], *, key: str | None = None, root: str = "") -> str:
    """Load the receipt, (re)type the key and root, check; the verdict's title."""
    page.set_input_files(
        "#receipt-file",
        {
            "name": "receipt.json",
            "mimeType": "application/json",
            "buffer": json.dumps(receipt).encode(),
        },
    )
    page.wait_for_function("() => document.getElementById('receipt-name').textContent !== ''")
    if key is not None:
        page.fill("#verifier-key", key)
    page.fill("#tsa-root", root)
    page.click("#receipt-check")
    page.wait_for_selector("#verdict:not([hidden]) #verdict-title")
    title = page.text_content("#verdict-title") or ""
    if title != "已验证":  # the code and the reason, so a failed assertion says which check
        title += f" ({code_of(page)}: {page.text_content('#verdict-reason')})"
    return title


def code_of(page: Page) -> str:
    return page.text_content("#verdict-code") or ""


def impostor_root(real_pem: str) -> str:
    """A self-signed CA with the real root's name and another key: not the TSA's issuer."""
    real = x509.load_pem_x509_certificate(real_pem.encode())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def token_over_other_data(var: Path) -> str:
    """A genuine token by the same TSA, over data that is not the receipt's checkpoint."""
    cert = x509.load_pem_x509_certificate((var / "tsa" / "tsa.pem").read_bytes())
    password = timestamps.key_password(load_settings(secret_key=SECRET))
    key = p.load_private_key((var / "tsa" / "tsa.key.pem").read_bytes(), password)
    authority = tsa.TimeStampAuthority(cert, key)
    query = tsa.request(b"another checkpoint\n", tsa.random_nonce())
    token = tsa.token_of(authority.respond(query))
    return base64.b64encode(token).decode()


# the tests ----------------------------------------------------------------------------------


def test_a_genuine_receipt_is_verified_with_its_entry_and_timestamp(
    browser_page: Page | None, made: Made
) -> None:
    page = ready(browser_page, made)
    # The Python reference agrees, so the page is judged against it.
    root = x509.load_pem_x509_certificate(made.root_pem.encode())
    proven = receipts.check(made.receipt, made.receipt["verifier_key"], [root])
    assert proven.entry.action == "room.meeting.announced" and proven.size == 7
    assert made.receipt["version"] == 2 and proven.entry.salt is not None

    assert check(page, made.receipt, root=made.root_pem) == "已验证"
    assert page.text_content("#fact-action") == "room.meeting.announced"
    assert page.text_content("#fact-index") == str(INDEX)
    assert page.text_content("#fact-size") == "7"
    assert "北京时间" in (page.text_content("#fact-time") or "")
    stamp = page.text_content("#fact-timestamp") or ""
    assert "bidroom 时间戳服务" in stamp and "签发机构未核验" not in stamp
    assert proven.time is not None
    beijing = proven.time.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert beijing.strftime("%H:%M:%S") in stamp

    page.click("#lang")
    assert page.text_content("#verdict-title") == "Verified"
    assert "Beijing time" in (page.text_content("#fact-time") or "")
    page.click("#lang")
    assert page.text_content("#verdict-title") == "已验证"

    # Without a root the token is still checked, and the page says the issuer was not.
    assert check(page, made.receipt) == "已验证"
    assert page.is_visible("#verdict-warn")


def test_a_receipt_made_before_salts_is_still_verified(
    browser_page: Page | None, made: Made
) -> None:
    page = ready(browser_page, made)
    root = x509.load_pem_x509_certificate(made.root_pem.encode())
    proven = receipts.check(made.legacy, made.legacy["verifier_key"], [root])
    assert (proven.entry, proven.size) == (LEGACY, 7)
    assert check(page, made.legacy, root=made.root_pem) == "已验证"
    assert page.text_content("#fact-action") == "auth.login"
    assert page.text_content("#fact-index") == "0"


def test_an_altered_entry_is_refused(browser_page: Page | None, made: Made) -> None:
    page = ready(browser_page, made)
    forged = {**made.receipt, "entry": made.receipt["entry"].replace("cert:ab12", "cert:cd34")}
    title = check(page, forged, root=made.root_pem)
    assert title == "验证失败 (audit_entry_altered: 回执中的记录已被篡改)"


def test_another_logs_key_is_refused(browser_page: Page | None, made: Made) -> None:
    page = ready(browser_page, made)
    # The same log name, another key: the key a forger would publish.
    name = made.receipt["verifier_key"].split("+", 1)[0]
    wrong = str(checkpoint.verifier_key(name, p.generate_ed25519_key()))
    title = check(page, made.receipt, key=wrong, root=made.root_pem)
    assert title.startswith("验证失败 (audit_note_unknown_key:"), title


def test_a_timestamp_over_other_data_is_refused(browser_page: Page | None, made: Made) -> None:
    page = ready(browser_page, made)
    swapped = {**made.receipt, "timestamp": token_over_other_data(made.var)}
    title = check(page, swapped, root=made.root_pem)
    assert title.startswith("验证失败 (tsa_imprint_mismatch:"), title


def test_a_root_that_is_not_the_issuer_is_refused(browser_page: Page | None, made: Made) -> None:
    page = ready(browser_page, made)
    title = check(page, made.receipt, root=impostor_root(made.root_pem))
    assert title.startswith("验证失败 (tsa_untrusted:"), title


def python_code(receipt: dict[str, Any], key: str, root_pem: str) -> str:
    """The code bidroom.receipts.check (the reference) gives, or "" when it verifies."""
    roots = [x509.load_pem_x509_certificate(root_pem.encode())]
    try:
        receipts.check(receipt, key, roots)
    except CryptoError as exc:
        return exc.code
    return ""


def other_time(token_b64: str) -> str:
    """The token with one digit of its TSTInfo's genTime changed (its signature kept)."""
    token = bytearray(base64.b64decode(token_b64))
    at = token.index(b"\x18\x0f") + 2  # GeneralizedTime, 15 characters: YYYYMMDDhhmmssZ
    token[at + 3] = ord("0") if token[at + 3] != ord("0") else ord("1")
    return base64.b64encode(bytes(token)).decode()


def other_salt(entry: str) -> str:
    """The entry with one digit of its salt changed (still 32 bytes of hex)."""
    at = entry.index('"salt":"') + len('"salt":"')
    return entry[:at] + ("0" if entry[at] != "0" else "1") + entry[at + 1 :]


def test_each_tampering_gets_the_code_python_gives(browser_page: Page | None, made: Made) -> None:
    page = ready(browser_page, made)
    r, key = made.receipt, made.receipt["verifier_key"]
    lines = r["checkpoint"].split("\n")
    cases = {
        "audit_receipt": {**r, "version": 3},
        "audit_entry_altered": {**r, "entry": other_salt(r["entry"])},
        "audit_note_signature": {**r, "checkpoint": "\n".join([lines[0], "8", *lines[2:]])},
        "audit_inclusion_invalid": {**r, "inclusion": r["inclusion"][::-1]},
        "tsa_bad_signature": {**r, "timestamp": other_time(r["timestamp"])},
    }
    for code, receipt in cases.items():
        assert python_code(receipt, key, made.root_pem) == code
        title = check(page, receipt, root=made.root_pem)
        assert title.startswith(f"验证失败 ({code}:"), title


GOOD_ENTRY = {
    "action": "bid.received",
    "actor": "uscc:91330903MA2B7H1X6Q",
    "index": 41,
    "objects": {"envelope": "0" * 64},
    "room": "lot-1",
    "salt": "5a" * 32,
    "seq": None,
    "time": "2026-11-28T02:00:00.123456Z",
    "v": 2,
}
LEGACY_ENTRY = {k: v for k, v in GOOD_ENTRY.items() if k != "salt"} | {"v": 1}
MALFORMED: list[dict[str, Any]] = [
    {"v": True},
    {"v": 2.0},
    {"index": True},
    {"index": 41.0},
    {"index": -1},
    {"index": 1 << 53},
    {"time": "2026-11-28T02:00:00Z"},
    {"time": "2026-02-30T02:00:00.123456Z"},
    {"time": "2026-11-28T02:00:00.12345Z"},
    {"time": "0000-11-28T02:00:00.123456Z"},
    {"time": "２０２６-11-28T02:00:00.123456Z"},
    {"actor": ""},
    {"actor": 7},
    {"action": ["bid.received"]},
    {"room": 1},
    {"seq": True},
    {"seq": 3.0},
    {"seq": "3"},
    {"seq": -3},
    {"objects": []},
    {"objects": {"envelope": "A" * 64}},
    {"objects": {"envelope": 0}},
    {"salt": None},
]

DECODE = """async (texts) => {
  const { decodeEntry } = await import("/js/receipt.js");
  return texts.map((text) => decodeEntry(text) !== null);
}"""


def test_the_browser_takes_exactly_the_entries_python_takes(
    browser_page: Page | None, made: Made
) -> None:
    """docs/audit.md "Entries": every field by its type. An entry the log holds whose field is
    of another type (true or 1.0 for a number, an empty actor, a non-hex object) is refused by
    the page as by bidroom.audit.decode, never read as a valid entry."""
    page = ready(browser_page, made)
    good = [audit.canonical(GOOD_ENTRY), audit.canonical(LEGACY_ENTRY)]
    bad = [audit.canonical({**GOOD_ENTRY, **changes}) for changes in MALFORMED]
    bad.append(audit.canonical({**LEGACY_ENTRY, "v": 1.0}))
    bad.append(audit.canonical({**LEGACY_ENTRY, "v": True}))
    for data in bad:
        with pytest.raises(audit.EntryMalformed):
            audit.decode(data)
    for data in good:
        audit.decode(data)
    taken = page.evaluate(DECODE, [d.decode() for d in good + bad])
    assert taken == [True] * len(good) + [False] * len(bad), [
        d for d, t in zip(good + bad, taken, strict=True) if t != (d in good)
    ]
