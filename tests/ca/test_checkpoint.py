"""Checkpoints: C2SP signed notes as Go writes them, every refusal with its code."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest

from ca import checkpoint as c
from ca import merkle
from ca import primitives as p
from ca.errors import AuditError

ORIGIN = "bidroom.example/audit"
KEY = p.ed25519_from_seed(bytes(range(32)))
VKEY = str(c.verifier_key(ORIGIN, KEY))


def raises(code: str, call: Callable[[], object]) -> AuditError:
    with pytest.raises(AuditError) as info:
        call()
    assert info.value.code == code, info.value
    return info.value


def tree_of(n: int, tag: str = "") -> merkle.Tree:
    return merkle.Tree.from_leaf_hashes(merkle.leaf_hash(f"{tag}{i}".encode()) for i in range(n))


def signed(size: int, root: bytes, origin: str = ORIGIN, name: str = ORIGIN) -> str:
    return c.sign_note(c.format_checkpoint(origin, size, root), name, KEY)


# -- known answers ----------------------------------------------------------------------------

# golang.org/x/mod/sumdb/note's documented example: Go's Sign gives exactly this note.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
    "qfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_go_sumdb_note_example() -> None:
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01
    key = p.ed25519_from_seed(raw[1:])
    assert str(c.verifier_key("PeterNeumann", key)) == GO_VKEY
    assert c.sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    assert c.open_note(GO_NOTE, GO_VKEY) == GO_TEXT
    assert c.open_note(GO_NOTE.encode(), c.parse_verifier_key(GO_VKEY)) == GO_TEXT
    altered = GO_NOTE.replace("cryptography", "cryptographY")
    raises("audit_note_signature", lambda: c.open_note(altered, GO_VKEY))


def test_c2sp_tlog_checkpoint_example() -> None:
    """The spec's example parses; its signature is by a key we do not know, so it is ignored."""
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    note = (
        body + "\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe"
        "4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    )
    checkpoint = c.parse_checkpoint(body)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert base64.b64encode(checkpoint.root).decode() == body.split("\n")[2]
    assert c.format_checkpoint(checkpoint.origin, checkpoint.size, checkpoint.root) == body
    raises("audit_note_unknown_key", lambda: c.parse_and_verify(note, VKEY))


def test_the_note_byte_by_byte() -> None:
    root = tree_of(5).root()
    note = signed(5, root).encode()
    public = p.ed25519_public_raw(KEY)
    key_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    body = ORIGIN.encode() + b"\n5\n" + base64.b64encode(root) + b"\n"
    head, line = note[: len(body) + 1], note[len(body) + 1 :]
    assert head == body + b"\n"
    assert line.startswith(b"\xe2\x80\x94 " + ORIGIN.encode() + b" ")  # U+2014 em dash, space
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    raw = base64.b64decode(line[:-1].split(b" ")[2], validate=True)
    assert raw[:4] == key_id and len(raw) == 4 + 64
    p.ed25519_verify(p.ed25519_public_from_raw(public), raw[4:], body)  # over the text only
    encoded = base64.b64encode(b"\x01" + public).decode()
    assert f"{ORIGIN}+{key_id.hex()}+{encoded}" == VKEY


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 7, 1 << 40])
def test_round_trip(size: int) -> None:
    root = merkle.EMPTY_ROOT if size == 0 else tree_of(3).root()
    checkpoint = c.parse_and_verify(signed(size, root), VKEY)
    assert checkpoint == c.Checkpoint(ORIGIN, size, root, ())


def test_round_trip_with_extensions_and_a_chosen_origin() -> None:
    body = c.format_checkpoint("other.example/log", 3, tree_of(3).root(), ["ext one", "ext 2"])
    note = c.sign_note(body, ORIGIN, KEY)
    checkpoint = c.parse_and_verify(note, VKEY, origin="other.example/log")
    assert checkpoint.extensions == ("ext one", "ext 2")


def test_witness_signatures_of_unknown_keys_are_ignored() -> None:
    note = signed(3, tree_of(3).root())
    witness = p.ed25519_from_seed(b"w" * 32)
    cosigned = c.sign_note(note.split("\n\n")[0] + "\n", "witness.example", witness)
    both = note + cosigned.split("\n\n")[1]
    assert c.parse_and_verify(both, VKEY).size == 3
    assert c.parse_and_verify(both, c.verifier_key("witness.example", witness), origin=ORIGIN)


# -- refusals ---------------------------------------------------------------------------------


def test_a_wrong_key_is_not_trusted() -> None:
    note = signed(3, tree_of(3).root())
    other = p.ed25519_from_seed(b"o" * 32)
    raises(
        "audit_note_unknown_key", lambda: c.parse_and_verify(note, c.verifier_key(ORIGIN, other))
    )
    raises(
        "audit_note_unknown_key", lambda: c.parse_and_verify(note, c.verifier_key("x.example", KEY))
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda note: note.replace("\n3\n", "\n4\n", 1),  # size
        lambda note: note.replace(ORIGIN + "\n", "bidroom.example/audiT\n", 1),  # origin
        lambda note: note.replace(note.split("\n")[2], base64.b64encode(bytes(32)).decode(), 1),
    ],
    ids=["size", "origin", "root"],
)
def test_an_altered_body_fails_the_signature(change: Callable[[str], str]) -> None:
    note = signed(3, tree_of(3).root())
    assert change(note) != note
    raises("audit_note_signature", lambda: c.parse_and_verify(change(note), VKEY))


def test_a_forged_signature_line() -> None:
    note = signed(3, tree_of(3).root())
    key_id = c.parse_verifier_key(VKEY).key_id
    forged_line = f"— {ORIGIN} {base64.b64encode(key_id + bytes(64)).decode()}\n"
    text = note.split("\n\n")[0] + "\n\n"
    raises("audit_note_signature", lambda: c.parse_and_verify(text + forged_line, VKEY))
    # A genuine signature does not cover a forged one of the same key next to it.
    raises("audit_note_signature", lambda: c.parse_and_verify(note + forged_line, VKEY))
    # A signature copied from another checkpoint does not sign this one.
    other = signed(4, tree_of(4).root())
    transplanted = text + other.split("\n\n")[1]
    raises("audit_note_signature", lambda: c.parse_and_verify(transplanted, VKEY))


def test_a_checkpoint_of_another_log() -> None:
    note = c.sign_note(c.format_checkpoint("evil.example/log", 3, tree_of(3).root()), ORIGIN, KEY)
    error = raises("audit_checkpoint_origin", lambda: c.parse_and_verify(note, VKEY))
    assert error.detail == {"origin": "evil.example/log", "expected": ORIGIN}


@pytest.mark.parametrize(
    "note",
    [
        "bidroom.example/audit\n3\nAAAA\n— x AAAAAAAA\n",  # no blank line
        "bidroom.example/audit\n3\n\n— x AAAAAAAAAA==",  # no final newline
        "bidroom.example/audit\n3\n\n\n",  # no signature line
        "bidroom.example/audit\n3\n\n- x AAAAAAAAAA==\n",  # a hyphen, not an em dash
        "bidroom.example/audit\n3\n\n— x AAAA\n",  # too short for a key ID and a signature
        "bidroom.example/audit\n3\n\n— x AAAA AAAAAAAAAA==\n",  # more than one space
        "bidroom.example/audit\n3\n\n— x+y AAAAAAAAAA==\n",  # '+' in the key name
        "bidroom.example/audit\n3\n\n— x AAAAAAAA*A==\n",  # not base64
        "bidroom.example/audit\t\n3\n\n— x AAAAAAAAAA==\n",  # a control character
        "bidroom.example/audit\n3\r\n\n— x AAAAAAAAAA==\n",
        "bidroom.example/audit\n3\n\n" + "— x AAAAAAAAAA==\n" * 101,  # too many signatures
    ],
)
def test_malformed_notes(note: str) -> None:
    raises("audit_note_malformed", lambda: c.parse_and_verify(note, VKEY))


def test_a_note_that_is_not_utf8() -> None:
    raises("audit_note_malformed", lambda: c.parse_and_verify(b"\xff\n1\n\n", VKEY))
    raises("audit_note_malformed", lambda: c.parse_and_verify("\ud800\n\n— x AAAAAAAAAA==\n", VKEY))


ROOT64 = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n3\n",  # two lines
        f"\n3\n{ROOT64}\n",  # empty origin
        f"{ORIGIN}\n03\n{ROOT64}\n",  # leading zero
        f"{ORIGIN}\n+3\n{ROOT64}\n",
        f"{ORIGIN}\n٣\n{ROOT64}\n",  # a digit, but not an ASCII one
        f"{ORIGIN}\n{1 << 64}\n{ROOT64}\n",
        f"{ORIGIN}\n3\n{ROOT64[:-4]}\n",  # not 32 bytes
        f"{ORIGIN}\n3\n{ROOT64[:-2]}B=\n",  # not the canonical encoding
        f"{ORIGIN}\n3\n{ROOT64}\n\nextension\n",  # an empty extension line
    ],
)
def test_malformed_checkpoints(body: str) -> None:
    note = c.sign_note(body, ORIGIN, KEY)
    raises("audit_checkpoint_malformed", lambda: c.parse_and_verify(note, VKEY))


@pytest.mark.parametrize(
    "args",
    [("", 1, bytes(32)), (ORIGIN, -1, bytes(32)), (ORIGIN, 1, bytes(31)), ("a\nb", 1, bytes(32))],
)
def test_format_refuses_what_it_cannot_write(args: tuple[str, int, bytes]) -> None:
    raises("audit_checkpoint_malformed", lambda: c.format_checkpoint(*args))
    raises("audit_checkpoint_malformed", lambda: c.format_checkpoint(ORIGIN, 1, bytes(32), [""]))


def test_sign_refuses_bad_names_and_texts() -> None:
    for name in ("", "a b", "a+b"):
        raises("audit_note_malformed", lambda n=name: c.sign_note("text\n", n, KEY))
    raises("audit_note_malformed", lambda: c.sign_note("no newline", ORIGIN, KEY))
    raises("audit_note_malformed", lambda: c.sign_note("bell\a\n", ORIGIN, KEY))


TYPE_2_KEY = base64.b64encode(b"\x02" + bytes(32)).decode()


@pytest.mark.parametrize(
    "text",
    [
        VKEY.replace("+", "-", 1),  # no separators
        VKEY[:-4],  # a truncated key
        "a+b" + VKEY,  # '+' in the name
        VKEY.split("+")[0] + "+00000000+" + VKEY.split("+")[2],  # key ID not of this key
        VKEY.split("+")[0] + "+" + VKEY.split("+")[1] + "+" + VKEY.split("+")[2][:-2] + "!=",
        f"{ORIGIN}+{c.key_id(ORIGIN, bytes(32)).hex()}+{TYPE_2_KEY}",  # not Ed25519
    ],
)
def test_malformed_verifier_keys(text: str) -> None:
    raises("audit_key_malformed", lambda: c.parse_verifier_key(text))


# -- consistency between checkpoints ----------------------------------------------------------


def test_a_growing_log_is_consistent() -> None:
    tree = tree_of(40)
    old = c.parse_and_verify(signed(17, tree.root(17)), VKEY)
    new = c.parse_and_verify(signed(40, tree.root()), VKEY)
    c.check_consistent(old, new, tree.consistency_proof(17, 40))
    c.check_consistent(new, new, [])
    empty = c.Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT)
    c.check_consistent(empty, new, [])


def test_two_roots_at_one_size_are_a_fork() -> None:
    honest, forked = tree_of(9), tree_of(9, tag="x")
    old = c.parse_and_verify(signed(9, honest.root()), VKEY)
    new = c.parse_and_verify(signed(9, forked.root()), VKEY)
    error = raises("audit_fork", lambda: c.check_consistent(old, new, []))
    assert error.detail["old_root"] == honest.root().hex()


def test_an_inconsistent_newer_checkpoint() -> None:
    honest = tree_of(12)
    rewritten = merkle.Tree.from_leaf_hashes(
        [*(honest.leaf_hash(i) for i in range(4)), merkle.leaf_hash(b"rewritten"),
         *(honest.leaf_hash(i) for i in range(5, 12))]
    )  # fmt: skip
    old = c.Checkpoint(ORIGIN, 9, honest.root(9))
    new = c.Checkpoint(ORIGIN, 12, rewritten.root())
    raises(
        "audit_consistency_invalid",
        lambda: c.check_consistent(old, new, rewritten.consistency_proof(9)),
    )


def test_a_smaller_newer_checkpoint_or_another_log() -> None:
    tree = tree_of(9)
    old, new = c.Checkpoint(ORIGIN, 9, tree.root()), c.Checkpoint(ORIGIN, 5, tree.root(5))
    raises("audit_checkpoint_rollback", lambda: c.check_consistent(old, new, []))
    other = c.Checkpoint("other.example/log", 9, tree.root())
    raises("audit_checkpoint_origin", lambda: c.check_consistent(old, other, []))
