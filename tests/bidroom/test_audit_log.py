"""The integrator over a real store (SQLite and PostgreSQL): numbers, proofs, checkpoints."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOM
from sqlalchemy import update

from bidroom import audit, audit_bundle
from bidroom.audit_log import AuditLog
from bidroom.hub import Hub
from bidroom.room import Actor, Command
from bidroom.store import AUDIT, Store
from ca import checkpoint, merkle
from ca import primitives as p
from ca.errors import AuditError

CHAIR = Actor("cert:ab12", "王敏", "chair")
ORIGIN = "bidroom.test/audit"
KEY = p.ed25519_from_seed(b"\x07" * 32)


def log_for(store: Store) -> AuditLog:
    return AuditLog(store.engine, ORIGIN, KEY, lambda: datetime.now(UTC))


async def announce(hub: Hub, count: int) -> None:
    for n in range(count):
        assert (await hub.execute(ROOM, Command("meeting.announce", {"text": f"#{n}"}), CHAIR))[
            "ok"
        ]


async def test_pending_entries_are_numbered_and_checkpointed(store: Store, hub: Hub) -> None:
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)
    await announce(hub, 4)
    log = log_for(store)
    signed = await log.integrate()
    assert signed is not None and signed.size == 5
    cp = checkpoint.parse_and_verify(signed.note, str(log.verifier), origin=ORIGIN)
    assert (cp.size, cp.root) == (5, signed.root)
    entries = await log.entries(0, 5)
    assert [audit.decode(e).action for _, e, _ in entries] == [
        "room.meeting.opened",
        *["room.meeting.announced"] * 4,
    ]
    for index, encoding, leaf in entries:
        assert merkle.leaf_hash(encoding) == leaf
        merkle.verify_inclusion(leaf, index, 5, await log.inclusion(index, 5), cp.root)
    assert await log.integrate() is None, "nothing new, no new checkpoint"


async def test_each_checkpoint_extends_the_one_before(store: Store, hub: Hub) -> None:
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)
    log = log_for(store)
    first = await log.integrate()
    await announce(hub, 6)
    second = await log_for(store).integrate()  # another node's integrator
    assert first is not None and second is not None and second.size == 7
    merkle.verify_consistency(1, 7, first.root, second.root, await log.consistency(1, 7))
    assert [c.size for c in await log.checkpoints()] == [1, 7]


async def test_integrations_that_overlap_in_one_process_and_across_nodes_agree(
    store: Store, hub: Hub
) -> None:
    """Bids completing together each integrate at once; a second node integrates too."""
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)
    here, there = log_for(store), log_for(store)
    for round_ in range(5):
        await announce(hub, 4)
        outcomes = await asyncio.gather(
            *(here.integrate() for _ in range(4)), there.integrate(), return_exceptions=True
        )
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        latest = await here.latest()
        assert latest is not None and latest.size == 1 + 4 * (round_ + 1)
    sizes = [c.size for c in await here.checkpoints()]
    assert sizes == sorted(set(sizes)), "one checkpoint per size, in order"
    entries = await here.entries(0, 21)
    assert [index for index, _, _ in entries] == list(range(21)), "numbered once, no hole"


async def test_a_log_rewritten_under_a_checkpoint_is_never_signed_again(
    store: Store, hub: Hub
) -> None:
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)
    await announce(hub, 2)
    assert await log_for(store).integrate() is not None
    async with store.engine.begin() as conn:
        await conn.execute(update(AUDIT).where(AUDIT.c.idx == 1).values(leaf=b"\x00" * 32))
    await announce(hub, 1)
    with pytest.raises(AuditError) as caught:
        await log_for(store).integrate()
    assert caught.value.code in ("audit_consistency_invalid", "audit_fork")
    assert [c.size for c in await log_for(store).checkpoints()] == [3]


async def test_every_leaf_commits_to_its_entry_with_the_entrys_salt(store: Store, hub: Hub) -> None:
    """The leaf hashes the entry with its salt: the same entry without it (all an outsider
    could guess) hashes to something else."""
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)
    await announce(hub, 2)
    log = log_for(store)
    await log.integrate()
    for _, encoding, leaf in await log.entries(0, 3):
        entry = audit.decode(encoding)
        assert entry.salt is not None and audit.SALT.fullmatch(entry.salt)
        assert merkle.leaf_hash(encoding) == leaf
        unsalted = audit.encode(replace(entry, salt=None))
        assert merkle.leaf_hash(unsalted) != leaf


async def test_a_log_begun_before_salts_goes_on_and_verifies(
    store: Store, hub: Hub, tmp_path: Path
) -> None:
    """A log written before migration 0006: integrated version-1 entries (no salt) and one
    still pending without a salt. They keep their leaves; the pending one gets its salt; the
    log's next checkpoint extends the old one, and the exported bundle verifies."""
    old = [
        # bids received in another lot (no room event: a room's event entries would need their
        # events stored beside them, bidroom.integrity)
        audit.Entry(LEGACY_AT, CHAIR.subject, "bid.received", "old-lot", None, {}, n)
        for n in range(3)
    ]
    async with store.engine.begin() as conn:
        for entry in old:
            await conn.execute(AUDIT.insert().values(**_legacy_row(entry)))
    old_log = log_for(store)
    first = await old_log.integrate()  # signs the old log as it stands
    assert first is not None and first.size == 3
    async with store.engine.begin() as conn:  # recorded by the old code, not yet integrated
        await conn.execute(
            AUDIT.insert().values(
                at=LEGACY_AT, actor="system", action="trust.root_added", objects={}, salt=None
            )
        )
    await hub.execute(ROOM, Command("meeting.open"), CHAIR)  # recorded by the new code
    await announce(hub, 1)
    log = log_for(store)
    second = await log.integrate()
    assert second is not None and second.size == 6
    merkle.verify_consistency(3, 6, first.root, second.root, await log.consistency(3, 6))
    read = [audit.decode(e) for _, e, _ in await log.entries(0, 6)]
    assert [e.salt is None for e in read] == [True] * 3 + [False] * 3
    assert read[:3] == old, "version-1 entries read back exactly as they were"
    folder = tmp_path / "bundle"
    await audit_bundle.export(log, folder, "now")
    assert audit_bundle.verify(folder).entries == 6


LEGACY_AT = datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=UTC)


def _legacy_row(entry: audit.Entry) -> dict[str, Any]:
    """The row an integrator before migration 0006 wrote: version-1 leaf, no salt."""
    return {
        "idx": entry.index,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "room_id": entry.room,
        "seq": entry.seq,
        "objects": dict(entry.objects),
        "leaf": merkle.leaf_hash(audit.encode(entry)),
    }
