"""RFC 6962 Merkle trees for the audit log (审计日志): hashes, a tree that proves, proof checks.

Hashing is RFC 6962 §2.1 exactly:

    leaf hash    = SHA-256(0x00 || entry)
    node hash    = SHA-256(0x01 || left || right)
    MTH({})      = SHA-256("")
    MTH(D[0:n])  = node hash(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n

Every tree of ``n`` leaves is made of *perfect subtrees*: the subtree at ``(level, index)`` covers
the leaves ``[index * 2**level, (index + 1) * 2**level)``. Once complete, a perfect subtree never
changes, so one store of them answers for every earlier tree size too. A proof is a handful of
them (plus at most one hash of an incomplete right edge), so proofs cost O(log n) lookups; the
proof shapes are RFC 6962 §2.1.1 (PATH) and §2.1.2 (PROOF), built the way transparency-dev/merkle
builds them. Verification is RFC 9162 §2.1.3.2 and §2.1.4.2, step by step.

- ``Tree``: every perfect subtree hash, level by level (O(1) amortised append, O(log n) proofs).
- ``Frontier``: only the perfect subtrees of ``[0, size)`` (one per bit of ``size``): enough to
  append and compute roots without holding the log (a "compact range").

``verify_*`` never return False: they return nothing or raise AuditError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256

from ca.errors import AuditError

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"

NodeReader = Callable[[int, int], bytes]
"""``nodes(level, index)``: the hash of the perfect subtree at (level, index)."""


def leaf_hash(entry: bytes) -> bytes:
    return sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(_NODE + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the tree of these leaf hashes (SHA-256("") for none)."""
    return Tree.from_leaf_hashes(leaf_hashes).root()


# proofs: building ---------------------------------------------------------------------------


def inclusion_proof(index: int, size: int, nodes: NodeReader) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]), leaf side first."""
    if not 0 <= index < size:
        raise _out_of_range(f"no entry {index} in a tree of {size}", index=index, size=size)
    return _path(index, 0, size, nodes)


def consistency_proof(m: int, n: int, nodes: NodeReader) -> list[bytes]:
    """RFC 6962 PROOF(m, D[0:n]): the tree of m is a prefix of the tree of n."""
    if not 0 <= m <= n:
        raise _out_of_range(f"no consistency proof from size {m} to size {n}", m=m, n=n)
    if m in (0, n):
        return []
    # The last perfect subtree of the tree of m, and its path in the tree of n; the client
    # knows that subtree already when m is a power of two (it is the whole old tree).
    level = (m & -m).bit_length() - 1
    index = (m >> level) - 1
    seed = [nodes(level, index)] if index else []
    return seed + _path(index, level, n, nodes)


def nodes_of(leaf_hashes: Sequence[bytes]) -> NodeReader:
    """A NodeReader over a plain list of leaf hashes (O(2**level) per node: small logs, tests)."""

    def nodes(level: int, index: int) -> bytes:
        begin = index << level
        return root(leaf_hashes[begin : begin + (1 << level)])

    return nodes


def _path(index: int, level: int, size: int, nodes: NodeReader) -> list[bytes]:
    """The audit path of the perfect subtree (level, index) in the tree of ``size`` leaves.

    Below ``fork`` (the highest level where the subtree's first leaf and ``size`` differ) every
    sibling is complete; at ``fork`` the right sibling may be the incomplete right edge; above
    it, the siblings are the complete subtrees to the left.
    """
    start = index << level
    fork = (start ^ size).bit_length() - 1
    proof = [nodes(lvl, (start >> lvl) ^ 1) for lvl in range(level, fork)]
    end = ((start >> fork) + 1) << fork
    if end < size:
        proof.append(_range_root(end, size, nodes))
    above = range(fork, size.bit_length())
    proof += [nodes(lvl, (start >> lvl) ^ 1) for lvl in above if (start >> lvl) & 1]
    return proof


def _range_root(begin: int, end: int, nodes: NodeReader) -> bytes:
    """MTH of leaves [begin, end), ``begin`` aligned on a power of two above ``end - begin``."""
    return _fold(_decompose(begin, end, nodes))


def _decompose(begin: int, end: int, nodes: NodeReader) -> list[bytes]:
    """The perfect subtrees covering [begin, end), largest (leftmost) first."""
    hashes = []
    for level in reversed(range((end - begin).bit_length())):
        if (end - begin) >> level & 1:
            hashes.append(nodes(level, begin >> level))
            begin += 1 << level
    return hashes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of consecutive perfect subtrees, largest first: they nest to the right (RFC's k)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


# proofs: checking (RFC 9162 §2.1.3.2, §2.1.4.2) ---------------------------------------------


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """Return nothing if ``proof`` shows ``leaf`` at ``index`` in the tree of ``size`` with
    root ``root_hash``; raise AuditError otherwise."""
    if not 0 <= index < size:
        raise _out_of_range(f"no entry {index} in a tree of {size}", index=index, size=size)
    _check_hashes(leaf, root_hash, *proof)
    computed, sn = _walk_inclusion(leaf, index, size - 1, proof)
    if sn != 0 or computed != root_hash:
        raise AuditError(
            f"the inclusion proof of entry {index} does not lead to the root of the tree of "
            f"{size}: the entry, the proof, the index, the size or the root was altered",
            code="audit_inclusion_invalid",
            detail={"index": index, "size": size, "proof_length": len(proof)},
        )


def _walk_inclusion(r: bytes, fn: int, sn: int, proof: Sequence[bytes]) -> tuple[bytes, int]:
    """RFC 9162 §2.1.3.2 steps 2-4; a proof too long leaves sn at -1 (fails step 5)."""
    for p in proof:
        if sn == 0:
            return r, -1
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r, sn


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> None:
    """Return nothing if ``proof`` shows the tree of m (root_m) is a prefix of the tree of n
    (root_n); raise AuditError otherwise."""
    if not 0 <= m <= n:
        raise _out_of_range(f"no consistency proof from size {m} to size {n}", m=m, n=n)
    _check_hashes(root_m, root_n, *proof)
    if m in (0, n):
        expected = EMPTY_ROOT if m == 0 else root_n
        ok = not proof and root_m == expected
    else:
        ok = bool(proof) and _walk_consistency(m, n, root_m, list(proof)) == (root_m, root_n, 0)
    if not ok:
        raise AuditError(
            f"the tree of {m} entries is not proved a prefix of the tree of {n}: the proof or "
            "one of the roots was altered, or the log rewrote its history",
            code="audit_consistency_invalid",
            detail={"m": m, "n": n, "proof_length": len(proof)},
        )


def _walk_consistency(m: int, n: int, root_m: bytes, path: list[bytes]) -> tuple[bytes, bytes, int]:
    """RFC 9162 §2.1.4.2 steps 2-6: (fr, sr, sn); a proof too long gives sn = -1."""
    if m & (m - 1) == 0:
        path = [root_m, *path]
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return fr, sr, -1
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr, sr, sn


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise AuditError(
                f"a Merkle hash is {HASH_SIZE} bytes (SHA-256)", code="audit_hash_malformed"
            )


def _out_of_range(message: str, **detail: int) -> AuditError:
    return AuditError(message, code="audit_index_out_of_range", detail=detail)


# the tree -----------------------------------------------------------------------------------


class Tree:
    """Every perfect subtree hash of an append-only log, one contiguous row per level.

    Row 0 holds the leaf hashes, row h the roots of the aligned subtrees of 2**h leaves, 32 bytes
    each, back to back (no per-hash object: a million leaves take about 64 MB). Roots and proofs
    can be asked for any size up to the current one.
    """

    def __init__(self) -> None:
        self._rows: list[bytearray] = [bytearray()]

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Iterable[bytes]) -> Tree:
        """The tree of these leaf hashes, built row by row (about 0.7 µs per leaf)."""
        hashes = list(leaf_hashes)
        _check_hashes(*hashes)
        tree = cls()
        tree._rows = [bytearray(b"".join(hashes))]
        while len(tree._rows[-1]) >= 2 * HASH_SIZE:
            tree._rows.append(_parents(tree._rows[-1]))
        return tree

    @property
    def size(self) -> int:
        return len(self._rows[0]) // HASH_SIZE

    def append(self, leaf: bytes) -> int:
        """Add a leaf hash; return its index. O(1) amortised: it completes few parents."""
        _check_hashes(leaf)
        index, node = self.size, bytes(leaf)
        for level in range(64):
            if level == len(self._rows):
                self._rows.append(bytearray())
            row = self._rows[level]
            row += node
            if len(row) % (2 * HASH_SIZE):
                break
            node = sha256(_NODE + row[-2 * HASH_SIZE :]).digest()
        return index

    def node(self, level: int, index: int) -> bytes:
        """The hash of the complete perfect subtree at (level, index)."""
        row = self._rows[level] if 0 <= level < len(self._rows) else bytearray()
        if not 0 <= index < len(row) // HASH_SIZE:
            raise _out_of_range(
                f"no complete subtree {index} at level {level} in a tree of {self.size}",
                level=level,
                index=index,
            )
        return bytes(row[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def leaf_hash(self, index: int) -> bytes:
        return self.node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all of them by default)."""
        return _range_root(0, self._size(size), self.node)

    def frontier(self, size: int | None = None) -> Frontier:
        size = self._size(size)
        return Frontier(size, tuple(_decompose(0, size, self.node)))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._size(size), self.node)

    def consistency_proof(self, m: int, n: int | None = None) -> list[bytes]:
        return consistency_proof(m, self._size(n), self.node)

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise _out_of_range(f"the log has {self.size} entries, not {size}", size=size)
        return size


def _parents(row: bytearray) -> bytearray:
    """The next row up: one node hash per complete pair (a trailing odd node waits)."""
    pairs = len(row) // (2 * HASH_SIZE) * 2 * HASH_SIZE
    with memoryview(row) as view:
        step = range(0, pairs, 2 * HASH_SIZE)
        return bytearray(b"".join([sha256(_NODE + view[i : i + 64]).digest() for i in step]))


# the frontier -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frontier:
    """The compact range [0, size): its perfect subtrees, largest first, one per bit of size.

    Enough to extend the log and compute its roots without holding it: an integrator can keep
    this (at most 64 hashes) and append to it. Immutable: ``append`` returns a new frontier.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise AuditError(
                f"a frontier of size {self.size} holds {self.size.bit_count()} hashes, "
                f"not {len(self.hashes)}",
                code="audit_hash_malformed",
            )
        _check_hashes(*self.hashes)

    def append(self, leaf: bytes) -> Frontier:
        """The frontier with one more leaf: equal-sized subtrees at the right edge merge."""
        _check_hashes(leaf)
        hashes, node, size = list(self.hashes), bytes(leaf), self.size
        while size & 1:
            node = node_hash(hashes.pop(), node)
            size >>= 1
        return Frontier(self.size + 1, (*hashes, node))

    def extend(self, leaves: Iterable[bytes]) -> Frontier:
        frontier = self
        for leaf in leaves:
            frontier = frontier.append(leaf)
        return frontier

    def root(self) -> bytes:
        return _fold(self.hashes)
