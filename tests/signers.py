"""Signers of a PDF for the tests: a CA with committee members' keys, the built-in TSA, what a
reader trusts, and poppler's own check of the signatures."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from ca import pades, pki, tsa
from ca import primitives as p


@dataclass(frozen=True)
class Member:
    key: p.PrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class Signers:
    sub: pki.CertificateAuthority
    members: dict[str, Member]
    stamper: tsa.LocalStamper  # the built-in TSA, its clock at ``t0``
    trust: pades.Trust
    tsa_roots: list[x509.Certificate]


def signers(t0: datetime, members: Mapping[str, pki.KeyKind]) -> Signers:
    """A root and a sub CA with fresh CRLs, a key and certificate per member, and the built-in
    TSA stamping at ``t0``; the trust a reader holds at ``t0`` + 1 minute."""
    root = pki.create_root("舟山市数字证书根CA", t0 - timedelta(days=30))
    sub = pki.create_intermediate(root, "舟山市数字证书二级CA", t0 - timedelta(days=30))
    issued = {
        name: Member(
            *pki.issue_with_key(sub, pki.Identity(name), t0 - timedelta(days=1), kind=kind)
        )
        for name, kind in members.items()
    }
    root, root_crl = pki.publish_crl(root, t0 - timedelta(minutes=5), timedelta(days=60))
    sub, sub_crl = pki.publish_crl(sub, t0 - timedelta(minutes=5), timedelta(days=60))
    tsa_root = pki.create_root("bidroom 时间戳根CA", t0 - timedelta(days=30))
    platform = pki.create_intermediate(tsa_root, "bidroom 平台CA", t0 - timedelta(days=30))
    tsa_key, tsa_cert = tsa.issue_tsa_certificate(platform, t0 - timedelta(days=30))
    authority = tsa.TimeStampAuthority(tsa_cert, tsa_key, [platform.cert], clock=lambda: t0)
    trust = pades.Trust(
        roots=[root.cert],
        tsa_roots=[tsa_root.cert],
        intermediates=[sub.cert, platform.cert],
        crls=[p.crl_der(root_crl), p.crl_der(sub_crl)],
        at=t0 + timedelta(minutes=1),
    )
    stamper = tsa.LocalStamper(authority, [tsa_root.cert])
    return Signers(sub, issued, stamper, trust, [tsa_root.cert])


def pdfsig(pdf: bytes, folder: Path) -> str:
    """poppler's own check of a PDF's signatures (integrity; trust is pyHanko's part)."""
    path = folder / "checked.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdfsig", "-nocert", str(path)], capture_output=True, timeout=60, check=False
    )
    return done.stdout.decode() + done.stderr.decode()
