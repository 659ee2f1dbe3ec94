"""The audit log's signing key: its own Ed25519 key, kept encrypted at rest.

    BIDROOM_AUDIT_KEY_FILE        PKCS#8 PEM, encrypted (cryptography's best available
                                  encryption: PBKDF2 + AES-256-CBC), mode 0600;
                                  default <var>/audit/log-key.pem, made at first use
    BIDROOM_AUDIT_KEY_PASSPHRASE  its passphrase: required, and nothing else derives from it

It is derived from nothing (not from BIDROOM_SECRET_KEY, as releases before 0010 did): whoever
holds the session secret cannot sign checkpoints, and the database and the var folder alone do
not give it away. Every node of a platform has the same file and passphrase (the operator copies
them); a node with another key refuses to sign (bidroom.audit_log, docs/audit.md "The
log's key"). Changing it is `bidroom audit key rotate`, never a new file.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from bidroom.errors import ConfigError
from bidroom.settings import Settings
from ca import primitives as p
from ca.authority import write_private
from ca.errors import CryptoError, KeyFileError

# how releases before 0010 derived it (`bidroom audit key create --legacy`)
LEGACY_INFO = b"bidroom audit log key v1"


def key_path(settings: Settings) -> Path:
    return settings.audit_key_file or settings.var_dir / "audit" / "log-key.pem"


def passphrase(settings: Settings) -> bytes:
    given = settings.audit_key_passphrase
    if given is None or not given.get_secret_value():
        raise ConfigError(
            "BIDROOM_AUDIT_KEY_PASSPHRASE is not set: the audit log's key file is encrypted with "
            'it (docs/operations.md, "The audit log\'s key")',
            code="audit_key_passphrase",
        )
    return given.get_secret_value().encode()


def load(settings: Settings, create: bool = True) -> p.Ed25519PrivateKey:
    """The log's key from its encrypted file; made first (a new random key) if there is none and
    ``create``. Raise ConfigError naming what is wrong."""
    path, password = key_path(settings), passphrase(settings)
    if not path.exists():
        if not create:
            raise ConfigError(
                f"no audit key file at {path} (BIDROOM_AUDIT_KEY_FILE): `bidroom audit key create`",
                code="audit_key_missing",
            )
        write(path, p.generate_ed25519_key(), password, exist_ok=True)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}", code="audit_key_unreadable"
        ) from exc
    if b"ENCRYPTED" not in data:
        raise ConfigError(
            f"{path} is not encrypted: the audit key is kept encrypted at rest",
            code="audit_key_unencrypted",
        )
    try:
        return p.load_ed25519_private_key(data, password)
    except KeyFileError as exc:
        raise ConfigError(
            f"cannot open the audit key {path} with BIDROOM_AUDIT_KEY_PASSPHRASE: {exc.message}",
            code="audit_key_unreadable",
        ) from exc


def write(path: Path, key: p.Ed25519PrivateKey, password: bytes, exist_ok: bool = False) -> None:
    """Write ``key`` encrypted into a new file (never over another): atomically, so that two
    processes making it at once end with one key, the first one's."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    draft.unlink(missing_ok=True)
    try:
        write_private(draft, p.dump_ed25519_private_key(key, password))
        os.link(draft, path)  # fails if another made it first
    except FileExistsError:
        if not exist_ok:
            raise ConfigError(
                f"{path} exists already; bidroom never overwrites a key", code="audit_key_exists"
            ) from None
    except (OSError, CryptoError) as exc:
        reason = getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot write {path}: {reason}", code="audit_key_unwritable") from exc
    finally:
        draft.unlink(missing_ok=True)


def legacy(settings: Settings, seed: str | None = None) -> p.Ed25519PrivateKey:
    """The key a release before 0010 signed with: the base64 seed it was given (its
    BIDROOM_AUDIT_KEY), else derived from BIDROOM_SECRET_KEY (`bidroom audit key create
    --legacy`: a log begun then goes on under its key, until rotated)."""
    if seed:
        try:
            return p.ed25519_from_seed(base64.b64decode(seed, validate=True))
        except (ValueError, CryptoError) as exc:
            raise ConfigError("BIDROOM_AUDIT_KEY is not a base64 32-byte seed") from exc
    if settings.secret_key is None:
        raise ConfigError("BIDROOM_SECRET_KEY is not set: nothing to derive the old key from")
    secret = settings.secret_key.get_secret_value().encode()
    return p.ed25519_from_seed(p.hkdf_expand(p.hkdf_extract(b"", secret), LEGACY_INFO, 32))
