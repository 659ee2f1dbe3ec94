"""Audit entries: canonical, content-free, and written with the events they record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import ROOM
from sqlalchemy import func, select

from bidroom import audit
from bidroom.hub import Hub
from bidroom.room import Actor, Command, Event
from bidroom.store import AUDIT, Store

AT = datetime(2026, 11, 28, 2, 0, 0, 123456, tzinfo=UTC)
CHAIR = Actor("cert:ab12", "王敏", "chair")


SALT = "5a" * 32


def test_an_entry_has_one_canonical_encoding() -> None:
    entry = audit.Entry(
        AT,
        "uscc:91330903MA2B7H1X6Q",
        "bid.received",
        "lot-1",
        None,
        {"envelope": "00" * 32},
        index=41,
        salt=SALT,
    )
    data = audit.encode(entry)
    assert data == (
        b'{"action":"bid.received","actor":"uscc:91330903MA2B7H1X6Q","index":41,'
        b'"objects":{"envelope":"' + b"0" * 64 + b'"},"room":"lot-1",'
        b'"salt":"' + SALT.encode() + b'","seq":null,'
        b'"time":"2026-11-28T02:00:00.123456Z","v":2}'
    )
    assert audit.decode(data) == entry
    with pytest.raises(ValueError):
        audit.decode(data.replace(b'"v":2', b'"v": 2'))


def test_a_version_1_entry_integrated_before_salts_keeps_its_encoding() -> None:
    legacy = audit.Entry(
        AT, "uscc:91330903MA2B7H1X6Q", "bid.received", "lot-1", None, {"envelope": "00" * 32}, 41
    )
    data = audit.encode(legacy)
    assert data == (
        b'{"action":"bid.received","actor":"uscc:91330903MA2B7H1X6Q","index":41,'
        b'"objects":{"envelope":"' + b"0" * 64 + b'"},"room":"lot-1","seq":null,'
        b'"time":"2026-11-28T02:00:00.123456Z","v":1}'
    )
    assert audit.decode(data) == legacy and legacy.salt is None


@pytest.mark.parametrize(
    "forged",
    [
        b'"v":2}',  # a version-2 entry without its salt
        b'"v":1,"salt":"' + b"5a" * 32 + b'"}',  # a salt under version 1
        b'"v":2,"salt":"' + b"5A" * 32 + b'"}',  # upper case
        b'"v":2,"salt":"' + b"5a" * 16 + b'"}',  # 16 bytes
        b'"v":3,"salt":"' + b"5a" * 32 + b'"}',  # an unknown version
        b'"v":2,"salt":"' + b"5a" * 32 + b'","extra":1}',  # a field more
    ],
)
def test_an_entry_with_a_missing_or_malformed_salt_is_refused(forged: bytes) -> None:
    fields = (
        b'{"action":"a","actor":"system","index":0,"objects":{},"room":null,"seq":null,'
        b'"time":"2026-11-28T02:00:00.123456Z",'
    )
    data = audit.canonical(json.loads(fields + forged))
    with pytest.raises(ValueError):
        audit.decode(data)


def test_a_room_event_is_recorded_by_its_hash_never_its_text() -> None:
    event = Event(
        "meeting.message_sent",
        {"from": "b", "to": None, "text": "对报价有异议"},
        seq=7,
        at=AT,
        actor=CHAIR,
    )
    entry = audit.room_event("lot-1", event)
    assert (entry.action, entry.room, entry.seq, entry.actor) == (
        "room.meeting.message_sent",
        "lot-1",
        7,
        "cert:ab12",
    )
    assert "对报价有异议" not in audit.encode(_indexed(entry)).decode()
    assert entry.objects == {
        "event": audit.digest(dict(event.data)),
        "actor": audit.digest(CHAIR.to_json()),  # the role and name it acted under too
    }


def _indexed(entry: audit.Entry) -> audit.Entry:
    return audit.Entry(entry.at, entry.actor, entry.action, entry.room, entry.seq, entry.objects, 0)


async def test_every_appended_event_has_its_pending_entry(store: Store, hub: Hub) -> None:
    assert (await hub.execute(ROOM, Command("meeting.open"), CHAIR))["ok"]
    await hub.execute(ROOM, Command("meeting.announce", {"text": "开始"}), CHAIR)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(AUDIT).order_by(AUDIT.c.id))).all()
        pending = (await conn.execute(select(func.count()).where(AUDIT.c.idx.is_(None)))).scalar()
    assert [(r.action, r.seq) for r in rows] == [
        ("room.meeting.opened", 1),
        ("room.meeting.announced", 2),
    ]
    assert pending == 2, "numbered later, by the integrator"
    salts = [r.salt for r in rows]
    assert all(audit.SALT.fullmatch(salt) for salt in salts), "salted when recorded"
    assert len(set(salts)) == len(salts), "each entry its own random salt"


GOOD = {
    "action": "bid.received",
    "actor": "uscc:91330903MA2B7H1X6Q",
    "index": 41,
    "objects": {"envelope": "0" * 64},
    "room": "lot-1",
    "salt": SALT,
    "seq": None,
    "time": "2026-11-28T02:00:00.123456Z",
    "v": 2,
}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"v": True}, "v"),  # JSON true is not 1 (Python says True == 1)
        ({"v": 2.0}, "v"),
        ({"v": "2"}, "v"),
        ({"index": True}, "index"),
        ({"index": 41.0}, "index"),
        ({"index": -1}, "index"),
        ({"index": 1 << 53}, "index"),  # beyond what every JSON reader holds exactly
        ({"time": "2026-11-28T02:00:00Z"}, "time"),  # no microseconds
        ({"time": "2026-11-28T02:00:00.123456+00:00"}, "time"),
        ({"time": "2026-11-28 02:00:00.123456Z"}, "time"),
        ({"time": "2026-02-30T02:00:00.123456Z"}, "time"),  # no such day
        ({"time": "2026-11-28T02:00:00.12345Z"}, "time"),  # five digits: strptime takes it
        ({"time": "２０２６-11-28T02:00:00.123456Z"}, "time"),  # fullwidth digits
        ({"time": 1764295200}, "time"),
        ({"actor": ""}, "actor"),
        ({"actor": 7}, "actor"),
        ({"actor": None}, "actor"),
        ({"action": ["bid.received"]}, "action"),
        ({"action": ""}, "action"),
        ({"room": 1}, "room"),
        ({"room": {"id": "lot-1"}}, "room"),
        ({"seq": True}, "seq"),
        ({"seq": 3.0}, "seq"),
        ({"seq": "3"}, "seq"),
        ({"seq": -3}, "seq"),
        ({"objects": []}, "objects"),
        ({"objects": None}, "objects"),
        ({"objects": {"envelope": "0" * 63}}, "objects"),
        ({"objects": {"envelope": "A" * 64}}, "objects"),  # upper case
        ({"objects": {"envelope": 0}}, "objects"),
        ({"salt": 5}, "salt"),
        ({"salt": None}, "salt"),
    ],
)
def test_each_field_of_an_entry_has_its_type(changes: dict[str, object], field: str) -> None:
    """docs/audit.md "Entries": every field by its type, each refusal naming the field, with
    the code audit_entry_malformed; canonical JSON alone takes 1.0 and true for 1."""
    assert audit.decode(audit.canonical(GOOD)).index == 41
    data = audit.canonical({**GOOD, **changes})
    with pytest.raises(audit.EntryMalformed) as caught:
        audit.decode(data)
    assert (caught.value.code, caught.value.field) == ("audit_entry_malformed", field)


def test_a_version_1_entry_as_true_or_one_point_zero_is_refused() -> None:
    legacy = {k: v for k, v in GOOD.items() if k != "salt"}
    assert audit.decode(audit.canonical({**legacy, "v": 1})).salt is None
    for v in (True, 1.0):
        with pytest.raises(audit.EntryMalformed) as caught:
            audit.decode(audit.canonical({**legacy, "v": v}))
        assert caught.value.field == "v"


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1]",
        b'{"v":2}\xff',
        audit.canonical({**GOOD, "actor": "X@"}).replace(b"X@", b"\\ud800"),  # lone surrogate
        audit.canonical(GOOD).replace(b'"v":2', b'"v":2,"v":2'),  # a duplicate key
    ],
)
def test_an_encoding_that_is_not_canonical_json_names_no_field(data: bytes) -> None:
    with pytest.raises(audit.EntryMalformed) as caught:
        audit.decode(data)
    assert (caught.value.code, caught.value.field) == ("audit_entry_malformed", None)


def test_a_field_missing_or_extra_names_no_field() -> None:
    for fields in ({**GOOD, "extra": 1}, {k: v for k, v in GOOD.items() if k != "room"}):
        with pytest.raises(audit.EntryMalformed) as caught:
            audit.decode(audit.canonical(fields))
        assert caught.value.field is None
