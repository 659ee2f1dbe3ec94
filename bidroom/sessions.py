"""Sessions: a bearer token checked, and the certificate it was issued for not revoked.

Every HTTP request and every WebSocket ``hello`` goes through :meth:`Sessions.verify`, and every
command on an open socket through :meth:`Sessions.check` again: a token bound to a certificate
(bidroom.tokens, what certificate login mints) stops working as soon as the node's trust store
holds a CRL listing that certificate (``401 session_revoked``, WebSocket close 4001).

How a node learns of a revocation: the trust store's ``crls/`` folder (``bidroom ca trust
add-crl``, or the folder shared between nodes). A CRL counts when a CA certificate the store
holds (a root or an intermediate) signed it; of each CA the latest counts (ca.trust.latest_crls).
The folder is listed at each check (three small directories) and read again only when a file
in it changed, so a check costs a directory listing. A trust store that cannot be read ends
every bound session (``revocation_unknown``), as it refuses every login.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from bidroom import tokens
from bidroom.errors import AuthError
from ca import trust
from ca.errors import CertificateError

_FOLDERS = ("roots", "intermediates", "crls")


class Revocations:
    """The certificates the trust store's CRLs list as revoked: (issuer digest, serial) -> when."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._seen: tuple[tuple[str, str, int, int], ...] | None = None
        self._revoked: dict[tuple[str, str], datetime] = {}

    def _listing(self) -> tuple[tuple[str, str, int, int], ...]:
        found = []
        for sub in _FOLDERS:
            try:
                with os.scandir(self.folder / sub) as entries:
                    for entry in entries:
                        st = entry.stat()
                        found.append((sub, entry.name, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                continue
        return tuple(sorted(found))

    def _refresh(self) -> None:
        listing = self._listing()
        if listing == self._seen:
            return
        try:
            recognised = trust.TrustStore(self.folder).recognised
        except (CertificateError, OSError) as exc:
            raise AuthError(
                "the trust store cannot be read: no session can be checked against its CRLs",
                code="revocation_unknown",
            ) from exc
        revoked: dict[tuple[str, str], datetime] = {}
        for crl in trust.latest_crls(recognised):
            issuer = tokens.issuer_digest(crl.issuer)
            for entry in crl:
                revoked[(issuer, format(entry.serial_number, "x"))] = entry.revocation_date_utc
        self._revoked, self._seen = revoked, listing

    def revoked_at(self, bound: tokens.Bound, now: datetime) -> datetime | None:
        """When ``bound``'s certificate was revoked, if it was by ``now``; None otherwise."""
        self._refresh()
        at = self._revoked.get((bound.issuer, bound.serial))
        return at if at is not None and at <= now else None


class Sessions:
    """The node's check of a session token (the key that signs them, the trust store's CRLs)."""

    def __init__(self, key: str, trust_root: Path):
        self._key = key
        self.revocations = Revocations(trust_root)

    def verify(self, token: str, now: datetime) -> tokens.Identity:
        """The identity of a valid token whose certificate (if bound) is not revoked; AuthError
        (token_invalid, token_expired, token_not_yet_valid, session_revoked) otherwise."""
        identity = tokens.verify(token, self._key, now)
        self.check(identity, now)
        return identity

    def check(self, identity: tokens.Identity, now: datetime) -> None:
        """AuthError ``session_revoked`` when the session's certificate is revoked by ``now``."""
        if identity.certificate is None:
            return
        at = self.revocations.revoked_at(identity.certificate, now)
        if at is not None:
            raise AuthError(
                "the certificate this session was signed in with has been revoked",
                code="session_revoked",
            )
