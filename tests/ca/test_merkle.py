"""RFC 6962 Merkle trees: hashes by hand, proofs against the RFC's own recursion, tampering."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ca import merkle
from ca.errors import AuditError


def H(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def leaf(entry: bytes) -> bytes:
    return H(b"\x00", entry)


def node(left: bytes, right: bytes) -> bytes:
    return H(b"\x01", left, right)


def entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def raises(code: str, call: Callable[[], object]) -> AuditError:
    with pytest.raises(AuditError) as info:
        call()
    assert info.value.code == code, info.value
    return info.value


# -- by hand: the Certificate Transparency test leaves ----------------------------------------

CT_ENTRIES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
# Published with the CT reference implementations (transparency-dev/merkle testonly): the root
# of the tree of the first n entries, n = 0..8.
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# Step by step, as RFC 6962 §2.1 writes MTH: k is the largest power of two below n.
L = [leaf(e) for e in CT_ENTRIES]
N01, N23, N45, N67 = node(L[0], L[1]), node(L[2], L[3]), node(L[4], L[5]), node(L[6], L[7])
N0123, N4567 = node(N01, N23), node(N45, N67)
BY_HAND = [
    H(b""),  # MTH({}) = SHA-256("")
    L[0],  # n = 1: the leaf hash
    N01,  # n = 2: k = 1
    node(N01, L[2]),  # n = 3: k = 2
    N0123,  # n = 4: k = 2, both halves perfect
    node(N0123, L[4]),  # n = 5: k = 4
    node(N0123, N45),  # n = 6: k = 4
    node(N0123, node(N45, L[6])),  # n = 7: k = 4, then k = 2 on the right
    node(N0123, N4567),  # n = 8
]


def test_hand_computed_roots_are_the_published_ones() -> None:
    assert L[0] == bytes.fromhex(CT_ROOTS[1])  # leaf hash of the empty entry
    assert [h.hex() for h in BY_HAND] == CT_ROOTS


@pytest.mark.parametrize("n", range(9))
def test_every_form_of_the_tree_gives_the_hand_computed_root(n: int) -> None:
    tree = merkle.Tree()
    for h in L[:n]:
        tree.append(h)
    assert merkle.root(L[:n]) == BY_HAND[n]
    assert tree.root() == BY_HAND[n]
    assert merkle.Tree.from_leaf_hashes(L).root(n) == BY_HAND[n]
    assert merkle.Frontier().extend(L[:n]).root() == BY_HAND[n]


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"abc") == H(b"\x00abc")
    assert merkle.node_hash(L[0], L[1]) == H(b"\x01" + L[0] + L[1])
    assert bytes.fromhex(CT_ROOTS[0]) == merkle.EMPTY_ROOT


def test_rfc6962_section_2_1_3_examples() -> None:
    """The tree of seven leaves of RFC 6962 §2.1.3, its audit paths and consistency proofs."""
    # RFC names: leaves a..f, d6; g = (a, b), h = (c, d), i = (e, f), j = d6, k = (g, h), l = (i, j)
    a, b, c, d, e, f, d6 = L[:7]
    g, h, i, j = node(a, b), node(c, d), node(e, f), d6
    k, l_ = node(g, h), node(i, j)
    tree = merkle.Tree.from_leaf_hashes(L[:7])
    assert tree.root() == node(k, l_)
    assert tree.inclusion_proof(0) == [b, h, l_]
    assert tree.inclusion_proof(3) == [c, g, l_]
    assert tree.inclusion_proof(4) == [f, j, k]
    assert tree.inclusion_proof(6) == [i, k]
    # §2.1.4.1: PROOF(3, D[7]) = [c, d, g, l], PROOF(4, D[7]) = [l], PROOF(6, D[7]) = [i, j, k]
    assert tree.consistency_proof(3) == [c, d, g, l_]
    assert tree.consistency_proof(4) == [l_]
    assert tree.consistency_proof(6) == [i, j, k]


def test_published_ct_proofs() -> None:
    tree = merkle.Tree.from_leaf_hashes(L)

    def hexes(proof: list[bytes]) -> list[str]:
        return [x.hex()[:16] for x in proof]

    assert hexes(tree.inclusion_proof(0)) == [
        "96a296d224f285c6",
        "5f083f0a1a33ca07",
        "6b47aaf29ee3c2af",
    ]
    assert hexes(tree.inclusion_proof(5)) == [
        "bc1a0643b12e4d2d",
        "ca854ea128ed050b",
        "d37ee418976dd957",
    ]
    assert hexes(tree.consistency_proof(2, 5)) == ["5f083f0a1a33ca07", "bc1a0643b12e4d2d"]
    assert hexes(tree.consistency_proof(2)) == ["5f083f0a1a33ca07", "6b47aaf29ee3c2af"]


# -- against the RFC's recursive definitions --------------------------------------------------


def k_of(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return H(b"")
    if len(d) == 1:
        return leaf(d[0])
    k = k_of(len(d))
    return node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], whole: bool) -> list[bytes]:
    if m == len(d):
        return [] if whole else [ref_mth(d)]
    k = k_of(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], whole), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True) if 0 < m < len(d) else []


BIG = 320
BIG_ENTRIES = entries(BIG)
BIG_TREE = merkle.Tree.from_leaf_hashes(merkle.leaf_hash(e) for e in BIG_ENTRIES)


@pytest.mark.parametrize("n", range(1, 65))
def test_every_proof_of_small_trees_is_the_rfcs(n: int) -> None:
    d = BIG_ENTRIES[:n]
    root = ref_mth(d)
    assert BIG_TREE.root(n) == root
    for i in range(n):
        proof = BIG_TREE.inclusion_proof(i, n)
        assert proof == ref_path(i, d)
        merkle.verify_inclusion(leaf(d[i]), i, n, proof, root)
    for m in range(n + 1):
        proof = BIG_TREE.consistency_proof(m, n)
        assert proof == ref_proof(m, d)
        merkle.verify_consistency(m, n, ref_mth(d[:m]), root, proof)


def test_every_size_up_to_a_few_hundred() -> None:
    frontier = merkle.Frontier()
    for n in range(1, BIG + 1):
        d = BIG_ENTRIES[:n]
        frontier = frontier.append(leaf(d[-1]))
        root = ref_mth(d)
        assert BIG_TREE.root(n) == frontier.root() == root
        assert BIG_TREE.frontier(n) == frontier
        for i in {0, n // 3, n // 2, n - 1}:
            assert BIG_TREE.inclusion_proof(i, n) == ref_path(i, d)
            assert BIG_TREE.consistency_proof(i, n) == ref_proof(i, d)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 600).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_match_the_rfc(case: tuple[int, int]) -> None:
    n, i = case
    d = entries(n)
    tree = merkle.Tree.from_leaf_hashes(leaf(e) for e in d)
    proof = tree.inclusion_proof(i)
    assert proof == ref_path(i, d)
    assert proof == merkle.inclusion_proof(i, n, merkle.nodes_of([leaf(e) for e in d]))
    merkle.verify_inclusion(leaf(d[i]), i, n, proof, ref_mth(d))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 600).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_consistency_proofs_match_the_rfc(case: tuple[int, int]) -> None:
    n, m = case
    d = entries(n)
    tree = merkle.Tree()
    for e in d:
        tree.append(leaf(e))
    proof = tree.consistency_proof(m)
    assert proof == ref_proof(m, d)
    merkle.verify_consistency(m, n, ref_mth(d[:m]), ref_mth(d), proof)


def test_append_and_rebuild_store_the_same_subtrees() -> None:
    appended = merkle.Tree()
    for i in range(BIG):
        assert appended.append(BIG_TREE.leaf_hash(i)) == i
    for level in range(BIG.bit_length()):
        for index in range(BIG >> level):
            assert appended.node(level, index) == BIG_TREE.node(level, index)
    raises("audit_index_out_of_range", lambda: appended.node(8, 2))


# -- tampering --------------------------------------------------------------------------------

N = 13
D = entries(N)
TREE = merkle.Tree.from_leaf_hashes(leaf(e) for e in D)
ROOT = TREE.root()


def roots_after(change: Callable[[list[bytes]], None]) -> bytes:
    d = list(D)
    change(d)
    return ref_mth(d)


@pytest.mark.parametrize("i", range(N))
def test_a_changed_byte_in_an_entry_is_detected(i: int) -> None:
    changed = bytearray(D[i])
    changed[-1] ^= 0x01
    proof = TREE.inclusion_proof(i)
    raises(
        "audit_inclusion_invalid",
        lambda: merkle.verify_inclusion(leaf(bytes(changed)), i, N, proof, ROOT),
    )


@pytest.mark.parametrize("i", range(N - 1))
def test_a_dropped_or_swapped_entry_is_detected(i: int) -> None:
    def swap(d: list[bytes]) -> None:
        d[i], d[i + 1] = d[i + 1], d[i]

    swapped_root = roots_after(swap)
    dropped_root = roots_after(lambda d: d.pop(i))
    proof = TREE.inclusion_proof(i)
    for wrong in (swapped_root, dropped_root):
        raises(
            "audit_inclusion_invalid",
            lambda w=wrong: merkle.verify_inclusion(leaf(D[i]), i, N, proof, w),
        )
    # The log that dropped entry i cannot prove its tree a prefix of the honest one.
    dropped = merkle.Tree.from_leaf_hashes(leaf(e) for j, e in enumerate(D) if j != i)
    raises(
        "audit_consistency_invalid",
        lambda: merkle.verify_consistency(
            N - 1, N, dropped.root(), ROOT, TREE.consistency_proof(N - 1)
        ),
    )
    # The swapped log's proof of entry i (now at i + 1) does not hold at index i.
    swapped_proof = merkle.Tree.from_leaf_hashes(
        leaf(e) for e in [*D[:i], D[i + 1], D[i], *D[i + 2 :]]
    ).inclusion_proof(i + 1)
    raises(
        "audit_inclusion_invalid",
        lambda: merkle.verify_inclusion(leaf(D[i]), i, N, swapped_proof, swapped_root),
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(0, N - 1), st.data())
def test_any_flipped_bit_in_an_inclusion_proof_is_detected(i: int, data: st.DataObject) -> None:
    proof = TREE.inclusion_proof(i)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    bad = [bytearray(x) for x in proof]
    bad[which][bit // 8] ^= 1 << (bit % 8)
    forged = [bytes(x) for x in bad]
    raises(
        "audit_inclusion_invalid", lambda: merkle.verify_inclusion(leaf(D[i]), i, N, forged, ROOT)
    )


@pytest.mark.parametrize("i", range(N))
def test_a_wrong_index_size_or_proof_length_is_detected(i: int) -> None:
    proof, entry = TREE.inclusion_proof(i), leaf(D[i])
    for j in {i - 1, i + 1} & set(range(N)):
        raises(
            "audit_inclusion_invalid", lambda j=j: merkle.verify_inclusion(entry, j, N, proof, ROOT)
        )
    # Another size proves against that size's root (what a checkpoint signs together).
    for n in {n for n in (i + 1, N - 1, N + 1) if i < n != N}:
        root = merkle.Tree.from_leaf_hashes(leaf(e) for e in entries(n)).root()
        raises(
            "audit_inclusion_invalid",
            lambda n=n, r=root: merkle.verify_inclusion(entry, i, n, proof, r),
        )
    for forged in (proof[:-1], [*proof, ROOT]):
        raises(
            "audit_inclusion_invalid",
            lambda f=forged: merkle.verify_inclusion(entry, i, N, f, ROOT),
        )


def test_indices_and_sizes_out_of_range() -> None:
    proof = TREE.inclusion_proof(0)
    for index, size in ((N, N), (-1, N), (0, 0)):
        raises(
            "audit_index_out_of_range",
            lambda i=index, n=size: merkle.verify_inclusion(L[0], i, n, proof, ROOT),
        )
    raises("audit_index_out_of_range", lambda: merkle.verify_consistency(5, 4, ROOT, ROOT, []))
    raises("audit_index_out_of_range", lambda: TREE.inclusion_proof(N))
    raises("audit_index_out_of_range", lambda: TREE.inclusion_proof(0, N + 1))
    raises("audit_index_out_of_range", lambda: TREE.consistency_proof(3, N + 1))
    raises("audit_index_out_of_range", lambda: TREE.root(N + 1))
    raises("audit_index_out_of_range", lambda: merkle.consistency_proof(3, 2, TREE.node))


def test_malformed_hashes_are_refused() -> None:
    proof = TREE.inclusion_proof(0)
    raises("audit_hash_malformed", lambda: merkle.verify_inclusion(L[0][:31], 0, N, proof, ROOT))
    raises(
        "audit_hash_malformed",
        lambda: merkle.verify_inclusion(L[0], 0, N, [*proof[:-1], b"x"], ROOT),
    )
    raises("audit_hash_malformed", lambda: merkle.Tree().append(b"short"))
    raises("audit_hash_malformed", lambda: merkle.Tree.from_leaf_hashes([L[0], L[1] + b"!"]))
    raises("audit_hash_malformed", lambda: merkle.Frontier(3, (L[0],)))


@pytest.mark.parametrize("m", range(1, N))
def test_consistency_tampering_is_detected(m: int) -> None:
    proof, root_m = TREE.consistency_proof(m), TREE.root(m)

    def check(mm: int, rm: bytes, rn: bytes, pr: list[bytes]) -> None:
        raises("audit_consistency_invalid", lambda: merkle.verify_consistency(mm, N, rm, rn, pr))

    check(m, leaf(b"another past"), ROOT, proof)
    check(m, root_m, leaf(b"another present"), proof)
    for which in range(len(proof)):
        bad = list(proof)
        bad[which] = node(bad[which], bad[which])
        check(m, root_m, ROOT, bad)
    check(m, root_m, ROOT, proof[:-1])
    check(m, root_m, ROOT, [*proof, ROOT])
    for other in {m - 1, m + 1} - {0, N}:
        check(other, TREE.root(other), ROOT, proof)


def test_consistency_edge_sizes() -> None:
    merkle.verify_consistency(0, N, merkle.EMPTY_ROOT, ROOT, [])
    merkle.verify_consistency(N, N, ROOT, ROOT, [])
    merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    for args in (
        (0, N, L[0], ROOT, []),  # the empty tree has one root
        (0, N, merkle.EMPTY_ROOT, ROOT, [ROOT]),
        (N, N, ROOT, ROOT, [ROOT]),
        (N, N, ROOT, L[0], []),
        (3, N, TREE.root(3), ROOT, []),  # 0 < m < n needs a proof
    ):
        raises("audit_consistency_invalid", lambda a=args: merkle.verify_consistency(*a))
