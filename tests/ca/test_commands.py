"""`bidroom bid` and `bidroom key` as a bidder and custodians use them: offline, on files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from certs import certificate
from cryptography import x509

from ca import primitives as p

PASSWORD = "岛上的密码-2026"


def bidroom(*args: str | Path, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("BIDROOM_KEY_PASSWORD", None)
    if password is not None:
        env["BIDROOM_KEY_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "bidroom", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def identity(tmp: Path, name: str, key: p.PrivateKey) -> tuple[Path, Path]:
    """A protected PKCS#8 key file and a certificate file."""
    key_file, cert_file = tmp / f"{name}.key.pem", tmp / f"{name}.crt"
    key_file.write_bytes(p.dump_private_key(key, PASSWORD.encode()))
    der = certificate(key, name)
    cert_file.write_bytes(x509.load_der_x509_certificate(der).public_bytes(p.serialization_pem()))
    return key_file, cert_file


@pytest.fixture
def lot(tmp_path: Path) -> dict[str, Path]:
    opening = p.generate_ec_key()
    (tmp_path / "opening.key.pem").write_bytes(p.dump_private_key(opening))
    (tmp_path / "opening.pub.pem").write_bytes(p.dump_public_pem(opening.public_key()))
    bidder_key, bidder_cert = identity(tmp_path, "bidder", p.generate_ec_key())
    bid = tmp_path / "投标文件.pdf"
    bid.write_bytes(os.urandom(3 * (1 << 20) + 77))
    return {
        "opening_key": tmp_path / "opening.key.pem",
        "opening_pub": tmp_path / "opening.pub.pem",
        "key": bidder_key,
        "cert": bidder_cert,
        "bid": bid,
        "dir": tmp_path,
    }


def test_a_bidder_seals_verifies_and_opens_a_bid(lot: dict[str, Path]) -> None:
    sealed = lot["dir"] / "bid.env"
    done = bidroom(
        "bid",
        "seal",
        lot["bid"],
        "--lot",
        "LOT-1",
        "--key",
        lot["key"],
        "--cert",
        lot["cert"],
        "--opening-key",
        lot["opening_pub"],
        "-o",
        sealed,
        password=PASSWORD,
    )
    assert done.returncode == 0, done.stderr
    assert "sealed" in done.stdout and lot["bid"].read_bytes() not in sealed.read_bytes()
    check = bidroom("bid", "verify", sealed)
    report = json.loads(check.stdout)
    assert report["lot"] == "LOT-1" and report["signature"] == "valid"
    assert report["plaintext_size"] == lot["bid"].stat().st_size
    back = lot["dir"] / "back.pdf"
    opened = bidroom("bid", "open", sealed, "--key", lot["key"], "-o", back, password=PASSWORD)
    assert opened.returncode == 0, opened.stderr
    assert back.read_bytes() == lot["bid"].read_bytes()


def test_errors_are_one_line_with_a_code(lot: dict[str, Path]) -> None:
    wrong = bidroom(
        "bid",
        "seal",
        lot["bid"],
        "--lot",
        "L",
        "--key",
        lot["key"],
        "--cert",
        lot["cert"],
        "--opening-key",
        lot["opening_pub"],
        "-o",
        lot["dir"] / "x",
        password="not the password",
    )
    assert wrong.returncode == 2
    assert wrong.stderr.strip().count("\n") == 0 and "(key_unreadable)" in wrong.stderr
    junk = lot["dir"] / "junk.env"
    junk.write_bytes(b"not an envelope at all")
    bad = bidroom("bid", "verify", junk)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("(envelope_header)")


def test_custodians_split_open_and_combine_the_opening_key(lot: dict[str, Path]) -> None:
    folder = lot["dir"] / "shares"
    custodians = []
    for name in ("代理机构", "监督人", "公证处"):
        key_file, cert_file = identity(lot["dir"], name, p.generate_ec_key())
        custodians.append((name, key_file, cert_file))
    specs = [f"--custodian={name}={cert}" for name, _, cert in custodians]
    done = bidroom(
        "key", "share", lot["opening_key"], "-k", "2", *specs, "--lot", "LOT-1", "-o", folder
    )
    assert done.returncode == 0, done.stderr
    files = sorted(folder.glob("share-*.json"))
    assert len(files) == 3 and (folder / "commitments.json").exists()
    opened = []
    for (name, key_file, _), share_file in zip(custodians, files, strict=True):
        mine = lot["dir"] / f"{name}.share.json"
        result = bidroom(
            "key", "open", share_file, "--key", key_file, "-o", mine, password=PASSWORD
        )
        assert result.returncode == 0, result.stderr
        assert mine.stat().st_mode & 0o077 == 0, "an opened share is for its custodian only"
        opened.append(mine)
    rebuilt = lot["dir"] / "rebuilt.key.pem"
    combined = bidroom(
        "key",
        "combine",
        opened[0],
        opened[2],
        "--commitments",
        folder / "commitments.json",
        "--public-key",
        lot["opening_pub"],
        "-o",
        rebuilt,
    )
    assert combined.returncode == 0, combined.stderr
    assert p.ec_scalar(p.load_private_key(rebuilt.read_bytes())) == p.ec_scalar(
        p.load_private_key(lot["opening_key"].read_bytes())
    )  # type: ignore[arg-type]
    too_few = bidroom(
        "key",
        "combine",
        opened[1],
        "--commitments",
        folder / "commitments.json",
        "--public-key",
        lot["opening_pub"],
        "-o",
        lot["dir"] / "no.pem",
    )
    assert too_few.returncode == 2 and "(share_too_few)" in too_few.stderr
