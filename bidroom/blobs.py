"""The blob store: sealed envelopes by content, ``<var>/blobs/sha256/ab/<64 hex>``.

A blob is written once and never changed: a finished upload file is moved in (same file
system, an atomic rename), and a second upload of the same bytes finds it there already.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import BinaryIO

from bidroom.errors import NotFound
from bidroom.settings import Settings

HEX = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            sha.update(block)
    return sha.hexdigest()


def root(settings: Settings) -> Path:
    return settings.var_dir / "blobs"


def path(settings: Settings, digest: str) -> Path:
    """Where the blob ``digest`` is (or would be) under the settings' var folder."""
    return BlobStore(root(settings)).path(digest)


class BlobStore:
    def __init__(self, root: Path):
        self.root = root

    def path(self, digest: str) -> Path:
        if not HEX.match(digest):
            raise NotFound("not a SHA-256 digest", code="blob_not_found")
        return self.root / "sha256" / digest[:2] / digest

    def put(self, source: Path, digest: str) -> Path:
        """Move the finished file ``source`` in as the blob ``digest``: its SHA-256, which the
        caller computed while checking it (bids.receive), so the bytes are not read twice."""
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            source.unlink()
        else:
            os.replace(source, target)
        return target

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"no blob {digest}", code="blob_not_found") from exc
