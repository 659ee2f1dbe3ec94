"""The integrator over a real store (SQLite and PostgreSQL): numbers, proofs, checkpoints."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from conftest import ROOM
from sqlalchemy import update

from bidroom import audit
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
