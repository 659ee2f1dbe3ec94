"""Checkpoints of the audit log (审计日志检查点): C2SP tlog-checkpoint in C2SP signed notes.

A checkpoint is a signed note whose text is a tree head::

    <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[<extension line>\\n ...]
    \\n
    — <key name> <base64(4-byte key ID || Ed25519 signature over the text)>\\n

- key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4], big-endian;
- a verifier key is written ``<name>+<key ID, 8 hex digits>+<base64(0x01 || public key)>``, as
  golang.org/x/mod/sumdb/note writes it, so Go tools accept ours and we accept theirs;
- reading follows c2sp.org/signed-note: the text ends at the last blank line; signatures of
  unknown keys are ignored (witnesses, rotated keys); every signature of the known key must
  verify, and there must be one; the log's key name is its origin unless said otherwise;
- a log never signs a checkpoint inconsistent with one it signed before (``check_consistent``);
- a log changes its key only by a rotation statement (``sign_rotation``): a signed note naming
  the old key, the new key and the tree (size, root) at the change, signed by both keys, so
  that a verifier holding either follows it (``KeyChain``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

from ca import merkle
from ca import primitives as p
from ca.errors import AuditError, KeyFileError, SignatureInvalid

ED25519 = 0x01
SIGNATURE_PREFIX = "— "  # em dash U+2014, space
MAX_SIGNATURES = 100  # golang.org/x/mod/sumdb/note's bound; the spec asks for at least 16
_SIZE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key, as a verifier knows it."""

    name: str
    key_id: bytes
    public_key: p.Ed25519PublicKey

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([ED25519]) + p.ed25519_public_raw(self.public_key))
        return f"{self.name}+{self.key_id.hex()}+{encoded.decode()}"


def key_id(name: str, public_raw: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([ED25519]) + public_raw).digest()[:4]


def verifier_key(name: str, key: p.Ed25519PrivateKey | p.Ed25519PublicKey) -> VerifierKey:
    _check_name(name)
    raw = p.ed25519_public_raw(key)
    return VerifierKey(name, key_id(name, raw), p.ed25519_public_from_raw(raw))


def parse_verifier_key(text: str) -> VerifierKey:
    """``<name>+<hex key ID>+<base64(0x01 || key)>``; raise AuditError audit_key_malformed."""
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    raw = _b64(encoded, "audit_key_malformed", "the verifier key")
    if not (_valid_name(name) and _KEY_ID.fullmatch(hex_id) and len(raw) == 33):
        raise _key_malformed(text, "it is not <name>+<8 hex digits>+<base64 Ed25519 key>")
    if raw[0] != ED25519:
        raise _key_malformed(text, f"signature type {raw[0]:#04x} is not Ed25519 (0x01)")
    if key_id(name, raw[1:]) != bytes.fromhex(hex_id):
        raise _key_malformed(text, "its key ID is not the hash of its name and key")
    try:
        return VerifierKey(name, bytes.fromhex(hex_id), p.ed25519_public_from_raw(raw[1:]))
    except KeyFileError as exc:
        raise _key_malformed(text, "it holds no Ed25519 public key") from exc


# checkpoint bodies --------------------------------------------------------------------------


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """The note text of a checkpoint (what ``sign_note`` signs)."""
    lines = [origin, str(size), base64.b64encode(root).decode(), *extensions]
    if (
        not 0 <= size < 1 << 64
        or len(root) != merkle.HASH_SIZE
        or not all(_valid_line(x) for x in lines)
    ):
        raise AuditError(
            "a checkpoint needs an origin, a size from 0, a 32-byte root and non-empty "
            "extension lines, none holding a newline or a control character",
            code="audit_checkpoint_malformed",
        )
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """The tree head in a note text; raise AuditError audit_checkpoint_malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not all(lines[:-1]) or not _valid_text(text):
        raise _checkpoint_malformed("it is not three or more non-empty lines, each ending")
    origin, size, encoded, *extensions = lines[:-1]
    if not _SIZE.fullmatch(size) or int(size) >= 1 << 64:
        raise _checkpoint_malformed(f"its size {size!r} is not a decimal without leading zeros")
    root = _b64(encoded, "audit_checkpoint_malformed", "the root hash")
    if len(root) != merkle.HASH_SIZE or base64.b64encode(root).decode() != encoded:
        raise _checkpoint_malformed("its root is not the base64 of a 32-byte hash")
    return Checkpoint(origin, int(size), root, tuple(extensions))


# signed notes -------------------------------------------------------------------------------


def sign_note(text: str, name: str, key: p.Ed25519PrivateKey) -> str:
    """The signed note: ``text``, a blank line, and one Ed25519 signature line by ``name``."""
    _check_name(name)
    if not text.endswith("\n") or not _valid_text(text):
        raise _note_malformed("a note text ends in a newline and holds no control character")
    signature = p.ed25519_sign(key, text.encode())
    encoded = base64.b64encode(key_id(name, p.ed25519_public_raw(key)) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {encoded}\n"


def open_note(note: str | bytes, verifier: VerifierKey | str) -> str:
    """The text of ``note`` once the verifier's signature on it verifies; raise AuditError."""
    if isinstance(verifier, str):
        verifier = parse_verifier_key(verifier)
    text, signatures = _split_note(_note_text(note))
    verified = 0
    for name, kid, signature in signatures:
        if (name, kid) == (verifier.name, verifier.key_id):
            _verify(verifier, signature, text)
            verified += 1
    if not verified:
        raise AuditError(
            f"the note is not signed by {verifier.name} (key ID {verifier.key_id.hex()})",
            code="audit_note_unknown_key",
            detail={"names": sorted({name for name, _, _ in signatures})},
        )
    return text


def parse_and_verify(
    note: str | bytes, verifier: VerifierKey | str, *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in a note signed by ``verifier``, from ``origin`` (default: the key name).

    Raise AuditError: audit_key_malformed, audit_note_malformed, audit_note_unknown_key,
    audit_note_signature, audit_checkpoint_malformed or audit_checkpoint_origin.
    """
    if isinstance(verifier, str):
        verifier = parse_verifier_key(verifier)
    checkpoint = parse_checkpoint(open_note(note, verifier))
    expected = verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise AuditError(
            f"the checkpoint is of log {checkpoint.origin!r}, not {expected!r}",
            code="audit_checkpoint_origin",
            detail={"origin": checkpoint.origin, "expected": expected},
        )
    return checkpoint


def signature_names(note: str | bytes) -> list[str]:
    """Who signed ``note``, as its signature lines say (unverified): for error messages."""
    try:
        _, signatures = _split_note(_note_text(note))
    except AuditError:
        return []
    return [f"{name} (key ID {kid.hex()})" for name, kid, _ in signatures]


def unverified_checkpoint(note: str | bytes) -> Checkpoint:
    """The checkpoint a note claims, before any signature is checked (to choose the key that
    must have signed it): never trust it until ``parse_and_verify``."""
    return parse_checkpoint(_split_note(_note_text(note))[0])


def _note_text(note: str | bytes) -> str:
    try:
        text = note.decode() if isinstance(note, bytes) else note
        text.encode()  # a lone surrogate is not UTF-8
    except UnicodeError as exc:
        raise _note_malformed("a note is UTF-8") from exc
    if not _valid_text(text):
        raise _note_malformed("a note holds no control character but newlines")
    return text


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """(text, [(key name, key ID, signature)]): the text ends at the last blank line."""
    split = note.rfind("\n\n")
    block = note[split + 2 :]
    if split < 0 or not block.endswith("\n"):
        raise _note_malformed("a note is a text, a blank line and signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _note_malformed(f"a note carries at most {MAX_SIGNATURES} signatures")
    return note[: split + 1], [_signature_line(line) for line in lines]


def _signature_line(line: str) -> tuple[str, bytes, bytes]:
    name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
    raw = _b64(encoded, "audit_note_malformed", "a signature")
    if not line.startswith(SIGNATURE_PREFIX) or not _valid_name(name) or len(raw) < 5:
        raise _note_malformed(f"{line!r} is not '— <key name> <base64 signature>'")
    return name, raw[:4], raw[4:]


def _verify(verifier: VerifierKey, signature: bytes, text: str) -> None:
    try:
        p.ed25519_verify(verifier.public_key, signature, text.encode())
    except SignatureInvalid as exc:
        raise AuditError(
            f"the signature of {verifier.name} on the note does not verify: the note was "
            "altered or the signature forged",
            code="audit_note_signature",
            detail={"name": verifier.name, "key_id": verifier.key_id.hex()},
        ) from exc


# key rotations ------------------------------------------------------------------------------

ROTATION = "bidroom-audit-key-rotation"


@dataclass(frozen=True)
class Rotation:
    """The log's key changed from ``old`` to ``new`` after the checkpoint of ``size``."""

    old: VerifierKey
    new: VerifierKey
    size: int
    root: bytes
    note: str


def format_rotation(old: VerifierKey, new: VerifierKey, size: int, root: bytes) -> str:
    """The text of a rotation statement (what both keys sign)."""
    if str(old) == str(new) or not 0 <= size < 1 << 64 or len(root) != merkle.HASH_SIZE:
        raise AuditError(
            "a rotation names two different keys, a size from 0 and a 32-byte root",
            code="audit_rotation_malformed",
        )
    lines = [ROTATION, str(old), str(new), str(size), base64.b64encode(root).decode()]
    return "".join(line + "\n" for line in lines)


def sign_rotation(
    old: tuple[str, p.Ed25519PrivateKey],
    new: tuple[str, p.Ed25519PrivateKey],
    size: int,
    root: bytes,
) -> str:
    """The rotation statement from key ``old`` to key ``new`` (each: key name, private key) at
    the checkpoint (``size``, ``root``) signed last by the old key: a note signed by both."""
    text = format_rotation(verifier_key(*old), verifier_key(*new), size, root)
    first = sign_note(text, *old)
    second = sign_note(text, *new)
    return first + second[len(text) + 1 :]


def parse_rotation(note: str) -> Rotation:
    """A rotation statement whose two signatures (old key's, new key's) both verify; raise
    AuditError audit_rotation_malformed, or the note's own errors (audit_note_*)."""
    text, _ = _split_note(_note_text(note))
    lines = text.split("\n")
    if len(lines) != 6 or lines[0] != ROTATION or lines[5] != "":
        raise AuditError(
            f"not a rotation statement: its text is {ROTATION!r}, the old key, the new key, a "
            "size and a root, one a line",
            code="audit_rotation_malformed",
        )
    old, new = parse_verifier_key(lines[1]), parse_verifier_key(lines[2])
    if not _SIZE.fullmatch(lines[3]):
        raise AuditError("a rotation's size is a decimal", code="audit_rotation_malformed")
    root = _b64(lines[4], "audit_rotation_malformed", "a rotation's root")
    if text != format_rotation(old, new, int(lines[3]), root):
        raise AuditError("a rotation is written in one way only", code="audit_rotation_malformed")
    open_note(note, old)
    open_note(note, new)
    return Rotation(old, new, int(lines[3]), root, note)


class KeyChain:
    """Which key signs the checkpoints of each size: the first key up to the first rotation's
    size, each rotation's new key after it. ``anchor`` is the key the verifier trusts (the
    published one, old or current): it must be one of the chain's keys, every rotation is
    signed by both its keys, and each begins where the one before ended."""

    def __init__(self, anchor: VerifierKey | str, rotations: Sequence[Rotation] = ()):
        if isinstance(anchor, str):
            anchor = parse_verifier_key(anchor)
        self.rotations = list(rotations)
        self.keys = [self.rotations[0].old if self.rotations else anchor]
        for number, rotation in enumerate(self.rotations):
            if str(rotation.old) != str(self.keys[-1]) or (
                number and rotation.size < self.rotations[number - 1].size
            ):
                raise AuditError(
                    f"rotation {number + 1} does not go on from the key and size before it",
                    code="audit_rotation_chain",
                    detail={"rotation": number + 1},
                )
            self.keys.append(rotation.new)
        if str(anchor) not in {str(k) for k in self.keys}:
            raise AuditError(
                f"the published key {anchor} is none of the log's keys "
                f"({', '.join(str(k) for k in self.keys)})",
                code="audit_note_unknown_key",
                detail={"verifier_key": str(anchor)},
            )

    def key_for(self, size: int) -> VerifierKey:
        """The key that signs a checkpoint of ``size`` entries."""
        for rotation in self.rotations:
            if size <= rotation.size:
                return rotation.old
        return self.keys[-1]

    def signer(self, note: str) -> VerifierKey | None:
        """Which of the chain's keys signed ``note`` (None: none of them)."""
        for key in reversed(self.keys):
            try:
                open_note(note, key)
            except AuditError:
                continue
            return key
        return None


# consistency between checkpoints ------------------------------------------------------------


def check_consistent(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Return nothing if ``new`` extends ``old`` (``proof``: the consistency proof from old.size
    to new.size); raise AuditError audit_checkpoint_origin, audit_checkpoint_rollback,
    audit_fork or audit_consistency_invalid."""
    if old.origin != new.origin:
        raise AuditError(
            f"checkpoints of two logs ({old.origin!r}, {new.origin!r}) cannot be compared",
            code="audit_checkpoint_origin",
            detail={"origin": new.origin, "expected": old.origin},
        )
    sizes = {"old_size": old.size, "new_size": new.size}
    if new.size < old.size:
        raise AuditError(
            f"the newer checkpoint has {new.size} entries, fewer than the {old.size} before",
            code="audit_checkpoint_rollback",
            detail=sizes,
        )
    if new.size == old.size and new.root != old.root:
        raise AuditError(
            f"two checkpoints of {old.origin} at size {old.size} with different roots: the log "
            "forked (keep both notes: they are the evidence)",
            code="audit_fork",
            detail={**sizes, "old_root": old.root.hex(), "new_root": new.root.hex()},
        )
    merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)


# small checks -------------------------------------------------------------------------------


def _valid_text(text: str) -> bool:
    return all(c == "\n" or c >= " " for c in text)


def _valid_line(line: str) -> bool:
    return bool(line) and "\n" not in line and _valid_text(line)


def _valid_name(name: str) -> bool:
    """Non-empty, no Unicode space, no plus (signed-note key names)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_name(name: str) -> None:
    if not _valid_name(name) or not _valid_text(name):
        raise _note_malformed(f"a key name {name!r} is non-empty, without spaces or '+'")


def _b64(encoded: str, code: str, what: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuditError(f"{what} is not standard base64", code=code) from exc


def _key_malformed(text: str, why: str) -> AuditError:
    return AuditError(f"cannot read the verifier key {text!r}: {why}", code="audit_key_malformed")


def _note_malformed(why: str) -> AuditError:
    return AuditError(f"not a signed note: {why}", code="audit_note_malformed")


def _checkpoint_malformed(why: str) -> AuditError:
    return AuditError(f"not a checkpoint: {why}", code="audit_checkpoint_malformed")
