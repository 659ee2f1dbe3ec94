"""`bidroom ca` as a CA operator uses it (the real command, in a subprocess), and the CRL endpoint.

An EC root and an issuing CA under it; a holder certificate with a generated key (PKCS#12),
one from a CSR, one with an encrypted PKCS#8 key; revocations; a CRL; then a trust store filled
with `bidroom ca trust add-*` accepts the good certificate and refuses the revoked ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from starlette.testclient import TestClient

from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.settings import load_settings
from bidroom.store import create_engine
from ca import authority, pki
from ca import primitives as p
from ca.errors import CertificateRevoked, KeyFileError
from ca.trust import TrustStore

ROOT_PASSWORD = "根证书的口令-2026"
ISSUING_PASSWORD = "issuing CA password"
HOLDER_PASSWORD = "持有人口令"
PASSWORD_VARS = (
    "BIDROOM_CA_PASSWORD",
    "BIDROOM_CA_PARENT_PASSWORD",
    "BIDROOM_KEY_PASSWORD",
)
USCC = "91330000MA2ABCDE1"
USCC += pki.uscc_check_char(USCC)


def bidroom(*args: str | Path, **passwords: str) -> subprocess.CompletedProcess[str]:
    """Run `bidroom ...`; ``ca=``, ``parent=``, ``key=`` set the three password variables."""
    env = {k: v for k, v in os.environ.items() if k not in PASSWORD_VARS}
    names = {"ca": PASSWORD_VARS[0], "parent": PASSWORD_VARS[1], "key": PASSWORD_VARS[2]}
    env.update({names[k]: v for k, v in passwords.items()})
    return subprocess.run(
        [sys.executable, "-m", "bidroom", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(done: subprocess.CompletedProcess[str], code: str) -> None:
    assert done.returncode == 2, done.stdout
    line = done.stderr.strip()
    assert "\n" not in line and line.endswith(f"({code})"), line


def pem_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def cas(tmp_path: Path) -> dict[str, Path]:
    """An EC root and an issuing CA under it, made with `bidroom ca init-*`."""
    root, issuing = tmp_path / "ca" / "root", tmp_path / "ca" / "issuing"
    made = bidroom(
        "ca",
        "init-root",
        "测试根CA",
        "--kind",
        "ec",
        "--dir",
        root,
        "--crl-url",
        "https://bidroom.example/ca/root.crl",
        ca=ROOT_PASSWORD,
    )
    assert "root CA" in ok(made)
    made = bidroom(
        "ca",
        "init-intermediate",
        "测试签发CA",
        "--parent",
        root,
        "--dir",
        issuing,
        "--crl-url",
        "https://bidroom.example/ca/issuing.crl",
        parent=ROOT_PASSWORD,
        ca=ISSUING_PASSWORD,
    )
    assert "intermediate CA" in ok(made)
    return {"root": root, "issuing": issuing, "dir": tmp_path}


def test_a_ca_issues_revokes_and_a_trust_store_judges(cas: dict[str, Path]) -> None:
    root, issuing, tmp = cas["root"], cas["issuing"], cas["dir"]
    assert pem_cert(issuing / "ca.pem").issuer == pem_cert(root / "ca.pem").subject
    assert authority.load_chain(issuing) == [pem_cert(root / "ca.pem")]

    # a generated key, into a password-protected PKCS#12 only its holder may read
    good, p12 = tmp / "good.pem", tmp / "good.p12"
    issued = bidroom(
        "ca",
        "issue",
        "--ca",
        issuing,
        "--name",
        "张三",
        "--org",
        "某某建设有限公司",
        "--uscc",
        USCC,
        "--out-p12",
        p12,
        "--out-cert",
        good,
        ca=ISSUING_PASSWORD,
        key=HOLDER_PASSWORD,
    )
    assert "issued" in ok(issued)
    assert p12.stat().st_mode & 0o777 == 0o600
    key, bundled, chain = p.load_pkcs12(p12.read_bytes(), HOLDER_PASSWORD.encode())
    assert bundled == pem_cert(good) and chain == [
        pem_cert(issuing / "ca.pem"),
        pem_cert(root / "ca.pem"),
    ]
    assert p.public_der(key.public_key()) == p.public_der(pem_cert(good).public_key())  # type: ignore[arg-type]
    with pytest.raises(KeyFileError):
        p.load_pkcs12(p12.read_bytes(), b"not the password")

    # from a CSR: the CSR's key, the desk's identity (not the CSR's subject)
    holder_key = p.generate_ec_key()
    csr_file, from_csr = tmp / "holder.csr", tmp / "from-csr.pem"
    csr_file.write_bytes(
        pki.csr_for(holder_key, "whoever I claim to be").public_bytes(p.serialization_pem())
    )
    ok(
        bidroom(
            "ca",
            "issue",
            "--ca",
            issuing,
            "--name",
            "李四",
            "--csr",
            csr_file,
            "--out-cert",
            from_csr,
            ca=ISSUING_PASSWORD,
        )
    )
    csr_cert = pem_cert(from_csr)
    assert p.public_der(csr_cert.public_key()) == p.public_der(holder_key.public_key())  # type: ignore[arg-type]
    assert (
        "李四" in csr_cert.subject.rfc4514_string()
        and "whoever" not in csr_cert.subject.rfc4514_string()
    )

    # a generated key as encrypted PKCS#8 PEM, revoked later by its serial
    third, third_key = tmp / "third.pem", tmp / "third.key.pem"
    printed = ok(
        bidroom(
            "ca",
            "issue",
            "--ca",
            issuing,
            "--name",
            "王五",
            "--out-key",
            third_key,
            "--out-cert",
            third,
            ca=ISSUING_PASSWORD,
            key=HOLDER_PASSWORD,
        )
    )
    assert third_key.stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError):
        p.load_private_key(third_key.read_bytes())
    p.load_private_key(third_key.read_bytes(), HOLDER_PASSWORD.encode())
    match = re.search(r"serial ([0-9a-f]+)", printed)
    assert match is not None and int(match.group(1), 16) == pem_cert(third).serial_number

    # the issuance log names every certificate and holds no key material
    log = authority.issued(issuing)
    assert [e["serial"] for e in log] == [
        authority.serial_hex(pem_cert(f).serial_number) for f in (good, from_csr, third)
    ]
    assert log[0]["fingerprint"] == p.fingerprint(pem_cert(good)).hex()
    assert "PRIVATE" not in (issuing / "issued.jsonl").read_text()
    assert (
        authority.issued(root)[-1]["subject"]
        == pem_cert(issuing / "ca.pem").subject.rfc4514_string()
    )

    # revoke by file and by serial, then publish
    ok(
        bidroom(
            "ca",
            "revoke",
            "--ca",
            issuing,
            from_csr,
            "--reason",
            "keyCompromise",
            ca=ISSUING_PASSWORD,
        )
    )
    ok(bidroom("ca", "revoke", "--ca", issuing, "--serial", match.group(1), ca=ISSUING_PASSWORD))
    published = ok(bidroom("ca", "crl", "--ca", issuing, ca=ISSUING_PASSWORD))
    assert str(issuing / "crl.der") in published
    crl = x509.load_der_x509_crl((issuing / "crl.der").read_bytes())
    assert crl.is_signature_valid(pem_cert(issuing / "ca.pem").public_key())  # type: ignore[arg-type]
    assert {r.serial_number for r in crl} == {csr_cert.serial_number, pem_cert(third).serial_number}

    # a trust store built with `bidroom ca trust add-*`
    store = tmp / "trust"
    ok(bidroom("ca", "trust", "add-root", root / "ca.pem", "--store", store, "--no-audit"))
    ok(
        bidroom(
            "ca", "trust", "add-intermediate", issuing / "ca.pem", "--store", store, "--no-audit"
        )
    )
    ok(bidroom("ca", "trust", "add-crl", root / "crl.der", "--store", store, "--no-audit"))
    ok(bidroom("ca", "trust", "add-crl", issuing / "crl.der", "--store", store, "--no-audit"))
    listed = json.loads(ok(bidroom("ca", "trust", "list", "--store", store)))
    assert listed["version"] == 4 and len(listed["roots"]) == len(listed["intermediates"]) == 1
    assert sorted(c["revoked"] for c in listed["crls"]) == [0, 2]

    trust = TrustStore(store)
    at = dt.datetime.now(dt.UTC)
    verified = trust.verify_certificate(pem_cert(good), [], at)
    assert verified.holder.name == "张三" and verified.holder.uscc == USCC
    for revoked in (from_csr, third):
        with pytest.raises(CertificateRevoked) as caught:
            trust.verify_certificate(pem_cert(revoked), [], at)
        assert caught.value.code == "cert_revoked"

    # the CA keys are encrypted on disk and for the CA alone
    for folder, password in ((root, ROOT_PASSWORD), (issuing, ISSUING_PASSWORD)):
        key_file = folder / "ca.key.pem"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
        with pytest.raises(KeyFileError):
            p.load_private_key(key_file.read_bytes())
        with pytest.raises(KeyFileError):
            p.load_private_key(key_file.read_bytes(), b"wrong")
        p.load_private_key(key_file.read_bytes(), password.encode())


def test_ca_errors_are_one_line_with_a_code(cas: dict[str, Path]) -> None:
    issuing, tmp = cas["issuing"], cas["dir"]
    out = tmp / "x.pem"
    base = ("ca", "issue", "--ca", issuing, "--name", "张三", "--out-cert", out)
    refused(bidroom(*base, "--out-p12", tmp / "x.p12", ca="wrong", key="k"), "key_unreadable")
    refused(bidroom(*base, "--out-p12", tmp / "x.p12", key="k"), "password_missing")
    refused(bidroom(*base, "--out-p12", tmp / "x.p12", ca=ISSUING_PASSWORD), "password_missing")
    refused(
        bidroom(*base, "--out-key", tmp / "x.key", "--uscc", "123", ca=ISSUING_PASSWORD, key="k"),
        "bad_uscc",
    )
    junk = tmp / "junk.csr"
    junk.write_bytes(b"not a CSR")
    refused(bidroom(*base, "--csr", junk, ca=ISSUING_PASSWORD), "csr_invalid")
    assert not out.exists() and authority.issued(issuing) == [], "nothing issued on a refusal"
    revoke = ("ca", "revoke", "--ca", issuing)
    refused(bidroom(*revoke, "--serial", "1234abcd", ca=ISSUING_PASSWORD), "unknown_serial")
    refused(bidroom(*revoke, "--serial", "zz", ca=ISSUING_PASSWORD), "bad_serial")
    refused(bidroom(*revoke, cas["root"] / "ca.pem", ca=ISSUING_PASSWORD), "not_issued_here")
    refused(bidroom("ca", "crl", "--ca", tmp / "nowhere", ca="x"), "ca_missing")
    again = ("ca", "init-root", "again", "--dir", cas["root"])
    refused(bidroom(*again, ca=ROOT_PASSWORD), "ca_exists")
    refused(bidroom("ca", "init-root", "no password", "--dir", tmp / "new"), "password_missing")
    assert not (tmp / "new" / "ca.key.pem").exists()
    holder = tmp / "holder.pem"
    ok(bidroom(*base[:-1], holder, "--out-key", tmp / "h.key", ca=ISSUING_PASSWORD, key="k"))
    refused(
        bidroom("ca", "trust", "add-root", holder, "--store", tmp / "t", "--no-audit"), "not_a_ca"
    )


def test_an_unprotected_demo_ca_only_when_asked(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    done = bidroom("ca", "init-root", "演示CA", "--dir", demo, "--unprotected")
    assert "UNENCRYPTED" in done.stderr and ok(done)
    p.load_private_key((demo / "ca.key.pem").read_bytes())
    assert (demo / "ca.key.pem").stat().st_mode & 0o777 == 0o600
    ok(
        bidroom(
            "ca",
            "issue",
            "--ca",
            demo,
            "--name",
            "演示",
            "--out-key",
            tmp_path / "k.pem",
            "--out-cert",
            tmp_path / "c.pem",
            key="k",
        )
    )


# the CRL over HTTP -------------------------------------------------------------------------


def migrated(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"

    async def run() -> None:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(run())
    return url


@pytest.fixture(params=["ca_dir", "var_dir"])
def platform_ca(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[TestClient, Path, x509.Certificate]]:
    """A platform CA that revoked a holder certificate, and the app serving its folder.

    Its folder is under BIDROOM_CA_DIR, or under BIDROOM_VAR_DIR/ca when that is unset.
    """
    where = {"ca_dir": tmp_path / "platform-ca"} if request.param == "ca_dir" else {}
    folder = where.get("ca_dir", tmp_path / "var" / "ca") / "bidroom-root"
    at = dt.datetime.now(dt.UTC)
    ca = authority.create_root(folder, "平台根CA", "ec", at, b"pw")
    _key, holder = authority.issue_with_key(folder, ca, pki.Identity("持有人"), at)
    authority.publish_crl(folder, authority.revoke(folder, ca, holder, at), at)
    settings = load_settings(
        database_url=migrated(tmp_path / "b.db"),
        secret_key="crl-secret-" + "s" * 40,
        node_id="test-node",
        var_dir=tmp_path / "var",
        **where,
    )
    with TestClient(create_app(settings)) as client:
        yield client, folder, holder


def test_the_platform_serves_its_crls(
    platform_ca: tuple[TestClient, Path, x509.Certificate],
) -> None:
    client, folder, holder = platform_ca
    ca = authority.load_certificate(folder)
    got = client.get("/ca/bidroom-root.crl")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pkix-crl"
    assert got.content == (folder / "crl.der").read_bytes()
    crl = x509.load_der_x509_crl(got.content)
    assert crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(holder.serial_number) is not None
    bad_names = (
        "nope.crl",
        "a.b.crl",
        "x" * 65 + ".crl",
        "bidroom-root",
        "bidroom-root.der",
        "..%2Fca%2Fbidroom-root.crl",
        "sub/bidroom-root.crl",
        "bidroom-root%00.crl",
        "bidroom-root.crl%0A",
    )
    for bad in bad_names:
        missing = client.get(f"/ca/{bad}")
        assert missing.status_code == 404, bad
        assert missing.json()["code"] == "crl_not_found", bad
