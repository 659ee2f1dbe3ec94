"""Two independently generated CAs recognised at once, and every way a certificate is refused.

Nothing is checked in: the CAs (one RSA-2048, one ECDSA P-256, each with an issuing CA) are
generated once per test session. Time is pinned: ``T0`` is "now" for every check.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca import pki, primitives
from ca.errors import CertificateError
from ca.pki import CertificateAuthority, Identity
from ca.trust import TrustStore, Usage, holder_of

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
ISSUED = T0 - 30 * DAY
REVOKED_AT = T0 - 2 * DAY
USCC_A = "9144030071526726XG"
USCC_B = "91110000802100433B"
BIDDER_A = Identity("张三", "甲建设工程有限公司", USCC_A)
BIDDER_B = Identity("李四", "乙工程咨询有限公司", USCC_B)


@dataclass(frozen=True)
class World:
    rsa_root: CertificateAuthority
    rsa_sub: CertificateAuthority
    ec_root: CertificateAuthority
    ec_sub: CertificateAuthority
    ec_sub_revoked: CertificateAuthority  # an issuing CA its root has revoked
    rsa_leaf: x509.Certificate
    ec_leaf: x509.Certificate
    revoked_leaf: x509.Certificate
    leaf_of_revoked_sub: x509.Certificate
    crls: tuple[x509.CertificateRevocationList, ...]  # in force at T0
    old_crls: tuple[x509.CertificateRevocationList, ...]  # EC CAs', in force T0-10d .. T0-3d


def _cas() -> tuple[CertificateAuthority, ...]:
    start = T0 - 365 * DAY
    rsa_root = pki.create_root("RSA Test Root CA", start, kind="rsa")
    rsa_sub = pki.create_intermediate(
        rsa_root, "RSA Test Issuing CA", start, kind="rsa", crl_url="http://ca.test/rsa.crl"
    )
    ec_root = pki.create_root("EC Test Root CA", start, crl_url="http://ca.test/ec-root.crl")
    ec_sub = pki.create_intermediate(ec_root, "EC Test Issuing CA", start)
    ec_sub_revoked = pki.create_intermediate(ec_root, "EC Test Retired CA", start)
    return rsa_root, rsa_sub, ec_root, ec_sub, ec_sub_revoked


@pytest.fixture(scope="session")
def world() -> World:
    rsa_root, rsa_sub, ec_root, ec_sub, ec_sub_revoked = _cas()
    _, rsa_leaf = pki.issue_with_key(rsa_sub, BIDDER_A, ISSUED, kind="rsa")
    csr = pki.csr_for(primitives.generate_ec_key(), "whatever the CSR claims")
    ec_leaf = pki.issue_from_csr(ec_sub, csr, BIDDER_B, ISSUED)
    _, revoked_leaf = pki.issue_with_key(ec_sub, BIDDER_B, ISSUED)
    _, leaf_of_revoked_sub = pki.issue_with_key(ec_sub_revoked, BIDDER_B, ISSUED)
    ec_sub, old_crl = pki.publish_crl(ec_sub, T0 - 10 * DAY)
    ec_root, old_root_crl = pki.publish_crl(ec_root, T0 - 10 * DAY)
    ec_sub = pki.revoke(ec_sub, revoked_leaf.serial_number, REVOKED_AT)
    ec_root = pki.revoke(ec_root, ec_sub_revoked.cert.serial_number, REVOKED_AT)
    crls = tuple(
        pki.publish_crl(ca, T0 - DAY, 30 * DAY)[1]
        for ca in (rsa_root, rsa_sub, ec_root, ec_sub, ec_sub_revoked)
    )
    return World(
        rsa_root,
        rsa_sub,
        ec_root,
        ec_sub,
        ec_sub_revoked,
        rsa_leaf,
        ec_leaf,
        revoked_leaf,
        leaf_of_revoked_sub,
        crls,
        (old_crl, old_root_crl),
    )


def _store(folder: Path, world: World, crls: bool = True) -> TrustStore:
    """Both roots recognised; the EC issuing CAs in the store, the RSA one sent by the client."""
    store = TrustStore(folder)
    for ca in (world.rsa_root, world.ec_root):
        store.add_root(ca.cert, T0 - 5 * DAY)
    for ca in (world.ec_sub, world.ec_sub_revoked):
        store.add_intermediate(ca.cert, T0 - 5 * DAY)
    for crl in world.crls if crls else ():
        store.add_crl(crl, T0 - DAY)
    return store


@pytest.fixture
def store(tmp_path: Path, world: World) -> TrustStore:
    return _store(tmp_path / "trust", world)


def _refused(
    store: TrustStore,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    at: dt.datetime = T0,
    usage: Usage = Usage.SIGN,
) -> CertificateError:
    with pytest.raises(CertificateError) as caught:
        store.verify_certificate(cert, chain, at, usage)
    return caught.value


def _der_sha256(cert: x509.Certificate) -> str:
    """The fingerprint computed independently of ca/ (PEM -> DER by the standard library)."""
    der = ssl.PEM_cert_to_DER_cert(primitives.certificate_pem(cert).decode())
    return hashlib.sha256(der).hexdigest()


def _leaf(ca: CertificateAuthority, usage: x509.KeyUsage, eku: bool) -> x509.Certificate:
    """A holder certificate with a chosen key usage, built without pki's profile."""
    key = primitives.generate_ec_key().public_key()
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(pki.identity_name(BIDDER_B))
        .issuer_name(ca.cert.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(ISSUED)
        .not_valid_after(T0 + 300 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    if eku:
        client = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
        builder = builder.add_extension(client, critical=False)
    return primitives.sign_certificate(builder, ca.key)


def _usage(*, signature: bool, agreement: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


# accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("usage", list(Usage))
def test_leaves_of_both_cas_are_accepted_for_signing_and_wrapping(
    store: TrustStore, world: World, usage: Usage
) -> None:
    rsa = store.verify_certificate(world.rsa_leaf, [world.rsa_sub.cert], T0, usage)
    ec = store.verify_certificate(world.ec_leaf, [], T0, usage)
    assert rsa.path == (world.rsa_leaf, world.rsa_sub.cert, world.rsa_root.cert)
    assert ec.path == (world.ec_leaf, world.ec_sub.cert, world.ec_root.cert)


def test_the_holder_is_who_the_ca_vetted_and_is_keyed_by_fingerprint_and_uscc(
    store: TrustStore, world: World
) -> None:
    holder = store.verify_certificate(world.ec_leaf, [], T0, Usage.SIGN).holder
    assert (holder.name, holder.organisation, holder.uscc) == ("李四", "乙工程咨询有限公司", USCC_B)
    assert holder.fingerprint == _der_sha256(world.ec_leaf)
    # A renewed certificate (new key) is another fingerprint, the same organisation (USCC).
    _, renewed = pki.issue_with_key(world.ec_sub, BIDDER_B, T0 - DAY)
    again = store.verify_certificate(renewed, [], T0, Usage.SIGN).holder
    assert again.uscc == holder.uscc and again.fingerprint != holder.fingerprint


def test_the_uscc_sits_in_organization_identifier_and_is_checked() -> None:
    root = pki.create_root("Root", ISSUED)
    _, cert = pki.issue_with_key(root, BIDDER_A, ISSUED)
    oid = x509.NameOID.ORGANIZATION_IDENTIFIER
    assert cert.subject.get_attributes_for_oid(oid)[0].value == f"USCC:{USCC_A}"
    assert holder_of(pki.issue_with_key(root, Identity("王五"), ISSUED)[1]).uscc is None
    with pytest.raises(CertificateError) as caught:
        Identity("王五", "丙公司", USCC_A[:-1] + "0")  # wrong check character
    assert caught.value.code == "bad_uscc"


# refused, each with its own code -----------------------------------------------------------


def test_a_leaf_of_an_unknown_ca_is_refused(store: TrustStore) -> None:
    stranger = pki.create_intermediate(pki.create_root("Stranger Root", ISSUED), "Stranger", ISSUED)
    _, leaf = pki.issue_with_key(stranger, BIDDER_A, ISSUED)
    assert _refused(store, leaf, [stranger.cert]).code == "unknown_issuer"
    assert _refused(store, leaf, []).code == "unknown_issuer"


def test_an_expired_and_a_not_yet_valid_leaf_are_refused(store: TrustStore, world: World) -> None:
    _, old = pki.issue_with_key(world.ec_sub, BIDDER_B, T0 - 60 * DAY, lifetime=30 * DAY)
    _, early = pki.issue_with_key(world.ec_sub, BIDDER_B, T0 + DAY)
    assert _refused(store, old, []).code == "cert_expired"
    assert _refused(store, early, []).code == "cert_not_yet_valid"


def test_a_revoked_leaf_and_a_leaf_of_a_revoked_issuing_ca_are_refused(
    store: TrustStore, world: World
) -> None:
    error = _refused(store, world.revoked_leaf, [])
    assert error.code == "cert_revoked"
    assert error.detail["revoked_at"] == REVOKED_AT.isoformat()
    assert _refused(store, world.leaf_of_revoked_sub, []).code == "cert_revoked"


def test_before_its_revocation_a_leaf_is_judged_by_the_crl_in_force_then(
    store: TrustStore, world: World
) -> None:
    for crl in world.old_crls:
        store.add_crl(crl, T0)
    assert store.verify_certificate(world.revoked_leaf, [], T0 - 5 * DAY, Usage.SIGN)
    assert _refused(store, world.revoked_leaf, [], at=T0).code == "cert_revoked"


@pytest.mark.parametrize(
    ("usage", "key_usage", "eku"),
    [
        (Usage.SIGN, _usage(signature=True, agreement=True), False),  # no clientAuth
        (Usage.SIGN, _usage(signature=False, agreement=True), True),  # cannot sign
        (Usage.WRAP, _usage(signature=True, agreement=False), True),  # cannot receive a bid
    ],
)
def test_a_key_used_for_what_its_certificate_does_not_allow_is_refused(
    store: TrustStore, world: World, usage: Usage, key_usage: x509.KeyUsage, eku: bool
) -> None:
    leaf = _leaf(world.ec_sub, key_usage, eku)
    assert _refused(store, leaf, [], usage=usage).code == "wrong_key_usage"


def test_a_substituted_intermediate_breaks_the_chain_signature(
    store: TrustStore, world: World
) -> None:
    """Same name as the real issuing CA, another key: whoever holds it cannot pose as the CA."""
    impostor = pki.create_intermediate(
        pki.create_root("EC Test Root CA", ISSUED), "EC Test Issuing CA", ISSUED
    )
    _, leaf = pki.issue_with_key(impostor, BIDDER_B, ISSUED)
    assert _refused(store, leaf, [impostor.cert]).code == "bad_chain_signature"
    assert _refused(store, leaf, []).code == "bad_chain_signature"


# revocation unknown is a hard fail ---------------------------------------------------------


def test_without_crls_nothing_is_accepted(tmp_path: Path, world: World) -> None:
    store = _store(tmp_path, world, crls=False)
    error = _refused(store, world.ec_leaf, [])
    assert (error.code, error.detail["why"]) == ("revocation_unknown", "no_crl")


def test_the_root_crl_is_needed_too(tmp_path: Path, world: World) -> None:
    store = _store(tmp_path, world, crls=False)
    store.add_crl(pki.publish_crl(world.ec_sub, T0 - DAY)[1], T0)
    error = _refused(store, world.ec_leaf, [])
    assert error.code == "revocation_unknown"
    assert error.detail["subject"] == world.ec_root.cert.subject.rfc4514_string()


def test_a_stale_crl_is_no_crl(store: TrustStore, world: World) -> None:
    at = T0 + 31 * DAY  # every CRL's nextUpdate (T0 + 29 days) has passed; the certs are valid
    error = _refused(store, world.ec_leaf, [], at=at)
    assert (error.code, error.detail["why"]) == ("revocation_unknown", "crl_stale")


def test_a_crl_not_signed_by_the_issuer_is_no_crl(tmp_path: Path, world: World) -> None:
    store = _store(tmp_path, world, crls=False)
    for crl in world.crls:
        if crl.issuer != world.ec_sub.cert.subject:
            store.add_crl(crl, T0)
    forger = pki.create_root("EC Test Issuing CA", ISSUED)  # the issuer's name, not its key
    store.add_crl(pki.publish_crl(forger, T0 - DAY)[1], T0)
    error = _refused(store, world.ec_leaf, [])
    assert (error.code, error.detail["why"]) == ("revocation_unknown", "crl_signature")


# the trust store is versioned and logged ---------------------------------------------------


def test_every_change_moves_the_version_and_is_logged(tmp_path: Path, world: World) -> None:
    store = TrustStore(tmp_path)
    empty = store.digest
    assert store.add_root(world.ec_root.cert, T0) == 1
    assert store.add_root(world.ec_root.cert, T0) == 1  # already there: no change
    with_root = store.digest
    assert store.remove(_der_sha256(world.ec_root.cert), T0 + DAY) == 2
    assert store.digest == empty != with_root
    entries = [json.loads(line) for line in (tmp_path / "changes.jsonl").read_text().splitlines()]
    assert [(e["version"], e["action"], e["time"]) for e in entries] == [
        (1, "add_root", T0.isoformat()),
        (2, "remove_roots", (T0 + DAY).isoformat()),
    ]
    subject = world.ec_root.cert.subject.rfc4514_string()
    assert {(e["fingerprint"], e["subject"]) for e in entries} == {
        (_der_sha256(world.ec_root.cert), subject)
    }
    assert entries[-1]["digest"] == empty


def test_the_folder_is_the_store(tmp_path: Path, world: World) -> None:
    store = _store(tmp_path, world)
    again = TrustStore(tmp_path)
    assert (again.version, again.digest) == (store.version, store.digest)
    assert again.verify_certificate(world.ec_leaf, [], T0, Usage.SIGN)
    again.remove(_der_sha256(world.ec_root.cert), T0)
    assert again.version == store.version + 1
    assert _refused(again, world.ec_leaf, []).code == "unknown_issuer"
    assert again.verify_certificate(world.rsa_leaf, [world.rsa_sub.cert], T0, Usage.SIGN)


def test_only_ca_certificates_enter_the_store(tmp_path: Path, world: World) -> None:
    store = TrustStore(tmp_path)
    for add in (store.add_root, store.add_intermediate):
        with pytest.raises(CertificateError) as caught:
            add(world.ec_leaf, T0)
        assert caught.value.code == "not_a_ca"
    with pytest.raises(CertificateError) as caught:
        store.add_root(world.ec_sub.cert, T0)  # a CA, but not self-signed
    assert caught.value.code == "not_a_ca"
    assert store.version == 0


# an independent verifier agrees -----------------------------------------------------------


def _crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    body = base64.encodebytes(primitives.crl_der(crl))
    return b"-----BEGIN X509 CRL-----\n" + body + b"-----END X509 CRL-----\n"


def _openssl_verify(
    folder: Path, world: World, leaf: x509.Certificate, sub: CertificateAuthority
) -> str:
    pem = primitives.certificate_pem
    (folder / "roots.pem").write_bytes(pem(world.rsa_root.cert) + pem(world.ec_root.cert))
    (folder / "sub.pem").write_bytes(pem(sub.cert))
    (folder / "leaf.pem").write_bytes(pem(leaf))
    (folder / "crls.pem").write_bytes(b"".join(_crl_pem(c) for c in world.crls))
    command = "openssl verify -crl_check_all -purpose sslclient -attime {} -CAfile roots.pem"
    command += " -untrusted sub.pem -CRLfile crls.pem leaf.pem"
    run = command.format(int(T0.timestamp())).split()
    done = subprocess.run(run, cwd=folder, capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def test_openssl_accepts_and_refuses_the_same_certificates(tmp_path: Path, world: World) -> None:
    """OpenSSL, with full CRL checking at T0, sees our certificates and CRLs as we do."""
    assert shutil.which("openssl"), "the openssl command is needed (apt-get install openssl)"
    assert "leaf.pem: OK" in _openssl_verify(tmp_path, world, world.rsa_leaf, world.rsa_sub)
    assert "leaf.pem: OK" in _openssl_verify(tmp_path, world, world.ec_leaf, world.ec_sub)
    revoked = _openssl_verify(tmp_path, world, world.revoked_leaf, world.ec_sub)
    assert "certificate revoked" in revoked and "leaf.pem: OK" not in revoked
