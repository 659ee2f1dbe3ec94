"""`bidroom bid` and `bidroom key` as a bidder and custodians use them: offline, on files."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import BinaryIO

import pytest
from certs import certificate
from client import TIMEOUT
from cryptography import x509
from envelopes import forge

from ca import command_line, envelope
from ca import primitives as p

PASSWORD = "岛上的密码-2026"
MIB = 1 << 20


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
    done = bidroom(*seal_args(lot, lot["bid"], sealed), password=PASSWORD)
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
        "--no-form-check",
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


def seal_args(
    lot: dict[str, Path], bid: Path, out: Path, *, form_check: bool = False
) -> list[str | Path]:
    """Seal ``bid``; without ``form_check``, as it is: the envelope takes any file (most bids here
    are random bytes, not a bid archive with its form, which bidroom.sealing checks by default)."""
    return [
        "bid",
        "seal",
        *([] if form_check else ["--no-form-check"]),
        bid,
        "--lot",
        "LOT-1",
        "--key",
        lot["key"],
        "--cert",
        lot["cert"],
        "--opening-key",
        lot["opening_pub"],
        "-o",
        out,
    ]


def sealed_bid(lot: dict[str, Path], name: str = "bid.env") -> Path:
    out = lot["dir"] / name
    done = bidroom(*seal_args(lot, lot["bid"], out), password=PASSWORD)
    assert done.returncode == 0, done.stderr
    return out


def test_opening_reads_the_envelope_once_and_writes_nothing_unless_all_verifies(
    lot: dict[str, Path],
) -> None:
    sealed = sealed_bid(lot)
    data = sealed.read_bytes()
    key = ("--key", lot["opening_key"])
    back = lot["dir"] / "back.pdf"
    good = bidroom("bid", "open", sealed, *key, "-o", back)
    assert good.returncode == 0, good.stderr
    assert back.read_bytes() == lot["bid"].read_bytes()
    assert f"({lot['bid'].stat().st_size} bytes, signature verified)" in good.stdout
    back.write_bytes(b"what was there before")
    middle = bytearray(data)
    middle[len(data) // 2] ^= 1  # a chunk of the body
    signature = bytearray(data)  # every chunk decrypts, then the trailer's signature fails
    at = data.rindex(b'"signature":"') + 20
    signature[at] = ord("A") if data[at] != ord("A") else ord("B")
    for tampered, code in ((middle, "envelope_chunk_altered"), (signature, "envelope_signature")):
        sealed.write_bytes(bytes(tampered))
        bad = bidroom("bid", "open", sealed, *key, "-o", back)
        assert bad.returncode == 2
        assert bad.stderr.strip().count("\n") == 0 and bad.stderr.strip().endswith(f"({code})")
        assert back.read_bytes() == b"what was there before"
        assert sorted(lot["dir"].glob("*.partial")) == []


def running_seal(lot: dict[str, Path], bid: Path, out: Path) -> subprocess.Popen[str]:
    """`bidroom bid seal` as a bidder's terminal runs it: Ctrl-C interrupts it."""
    env = {**os.environ, "BIDROOM_KEY_PASSWORD": PASSWORD}
    return subprocess.Popen(
        [sys.executable, "-m", "bidroom", *map(str, seal_args(lot, bid, out))],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a shell would
    )


def partial_grown(seal: subprocess.Popen[str], out: Path) -> Path:
    """The seal's temporary file beside ``out`` once some MiB are in it (the seal still runs)."""
    deadline = time.monotonic() + 6 * TIMEOUT
    while time.monotonic() < deadline:
        assert seal.poll() is None, "the seal ended before it could be interrupted"
        for partial in out.parent.glob(f"{out.name}.*.partial"):
            with contextlib.suppress(FileNotFoundError):
                if partial.stat().st_size > 2 * MIB:
                    return partial
        time.sleep(0.002)
    raise AssertionError("the seal wrote no temporary file beside its output")


def fed_seal(lot: dict[str, Path], sealed: Path) -> tuple[subprocess.Popen[str], BinaryIO]:
    """A seal reading its bid from a pipe this test writes 8 MiB into and keeps open: the seal
    is then surely mid-way, waiting for more, whatever the machine's load (a file might be
    sealed whole before the signal comes)."""
    fifo = lot["dir"] / f"bid-{secrets.token_hex(4)}.fifo"
    os.mkfifo(fifo)
    seal = running_seal(lot, fifo, sealed)
    feed = fifo.open("wb")  # opens once the seal has opened it to read
    feed.write(bytes(8 * MIB))
    feed.flush()
    partial_grown(seal, sealed)
    return seal, feed


def test_an_interrupted_seal_keeps_the_envelope_that_was_there(lot: dict[str, Path]) -> None:
    sealed = sealed_bid(lot)
    before = sealed.read_bytes()
    killed, feed = fed_seal(lot, sealed)
    [partial] = sealed.parent.glob(f"{sealed.name}.*.partial")
    killed.kill()
    killed.communicate(timeout=6 * TIMEOUT)
    feed.close()
    assert sealed.read_bytes() == before
    assert bidroom("bid", "verify", sealed).returncode == 0
    partial.unlink()  # SIGKILL leaves its temporary file, never a truncated envelope at -o

    interrupted, feed = fed_seal(lot, sealed)
    interrupted.send_signal(signal.SIGINT)
    _, stderr = interrupted.communicate(timeout=6 * TIMEOUT)
    with contextlib.suppress(BrokenPipeError):
        feed.close()
    assert interrupted.returncode == 130 and "Traceback" not in stderr, stderr
    assert sealed.read_bytes() == before
    assert sorted(lot["dir"].glob("*.partial")) == []

    done = bidroom(*seal_args(lot, lot["bid"], sealed), password=PASSWORD)
    assert done.returncode == 0, done.stderr
    assert sealed.read_bytes() != before and sorted(lot["dir"].glob("*.partial")) == []
    back = lot["dir"] / "back.pdf"
    assert bidroom("bid", "open", sealed, "--key", lot["opening_key"], "-o", back).returncode == 0
    assert back.read_bytes() == lot["bid"].read_bytes()


def test_sealing_into_a_missing_folder_is_one_line(lot: dict[str, Path]) -> None:
    out = lot["dir"] / "no such folder" / "bid.env"
    done = bidroom(*seal_args(lot, lot["bid"], out), password=PASSWORD)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "(file_unwritable)" in done.stderr


def test_the_revocation_reasons_offered_are_x509s() -> None:
    """ca.command_line spells them out so as not to import cryptography to build the tree."""
    offered = set(command_line.REVOCATION_REASONS)
    reasons = {r.value for r in x509.ReasonFlags}
    assert offered == reasons - {"unspecified", "removeFromCRL"}


def test_an_opened_bid_is_private_and_a_planted_link_is_not_followed(
    lot: dict[str, Path],
) -> None:
    """`bid open` wrote the plaintext through a fixed `OUT.partial`: a symbolic link planted
    there in a shared folder received the bid's plaintext, and the result was 0644."""
    sealed = sealed_bid(lot)
    shared = lot["dir"] / "shared"
    shared.mkdir(mode=0o777)
    decoy = lot["dir"] / "planted-leak.txt"
    out = shared / "opened.pdf"
    (shared / "opened.pdf.partial").symlink_to(decoy)
    old = os.umask(0)
    try:
        opened = bidroom("bid", "open", sealed, "--key", lot["opening_key"], "-o", out)
    finally:
        os.umask(old)
    assert opened.returncode == 0, opened.stderr
    assert not decoy.exists(), "nothing is written through the planted link"
    assert out.read_bytes() == lot["bid"].read_bytes() and not out.is_symlink()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_bid_verify_is_the_strict_reader(lot: dict[str, Path]) -> None:
    """`bidroom bid verify` refuses what the format forbids even when it is signed: a body in
    1-byte chunks, an upper-case key id (verify took it, open then could not find its entry)."""
    key = p.generate_ec_key()
    sealer = envelope.Sealer(certificate(key, "六横海洁"), key)
    opening = p.load_public_pem(lot["opening_pub"].read_bytes())
    assert isinstance(opening, p.EcPublicKey)

    def upper(fields: dict) -> dict:
        entries = [dict(e) for e in fields["recipients"]]
        entries[1]["key"] = entries[1]["key"].upper()
        return {**fields, "recipients": entries}

    cases = {
        "chunks.env": (forge(sealer, opening, [b"a", b"b"], lot="LOT-1"), "envelope_chunk_short"),
        "upper.env": (
            forge(sealer, opening, [b"ab"], lot="LOT-1", preamble=upper),
            ("envelope_header_field"),
        ),
    }
    for name, (data, code) in cases.items():
        (lot["dir"] / name).write_bytes(data)
        got = bidroom("bid", "verify", lot["dir"] / name)
        assert got.returncode == 2 and got.stderr.strip().endswith(f"({code})"), got.stderr
    good = lot["dir"] / "good.env"
    good.write_bytes(forge(sealer, opening, [b"ab"], lot="LOT-1"))
    assert bidroom("bid", "verify", good).returncode == 0


def bid_archive(form: dict[str, object] | bytes | None) -> bytes:
    """A bid's plaintext: a ZIP whose first member is ``bid.json`` (``form``, unless None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        if form is not None:
            data = form if isinstance(form, bytes) else json.dumps(form).encode()
            archive.writestr("bid.json", data)
        archive.writestr("技术标.pdf", os.urandom(2048))
    return out.getvalue()


def form(price: object, lot: str = "LOT-1") -> dict[str, object]:
    return {"format": "bidroom-bid-form", "version": 1, "lot": lot, "price": price}


@pytest.mark.parametrize(
    ("plaintext", "code"),
    [
        (bid_archive(form("0.00")), "price_not_positive"),
        (bid_archive(form("0")), "price_not_positive"),
        (bid_archive(form("-1.00")), "form_bad_field"),
        (bid_archive(form("abc")), "form_bad_field"),
        (bid_archive(form("99.505")), "form_bad_field"),
        (bid_archive(form("1E+2")), "form_bad_field"),
        (bid_archive(form(3650000)), "form_bad_field"),
        (bid_archive(form("3650000.00", lot="LOT-2")), "form_other_lot"),
        (bid_archive(None), "form_missing"),
        (bid_archive(b"\xff not json"), "form_unreadable"),
        (b"%PDF-1.7 not a bid archive", "form_not_zip"),
    ],
)
def test_sealing_refuses_a_bid_the_opening_could_not_price(
    lot: dict[str, Path], plaintext: bytes, code: str
) -> None:
    """A sealed price is out of sight until the opening: the bidder's tool is the last check."""
    bid, out = lot["dir"] / "bid.zip", lot["dir"] / "bid.env"
    bid.write_bytes(plaintext)
    done = bidroom(*seal_args(lot, bid, out, form_check=True), password=PASSWORD)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.endswith(f"({code})") and not out.exists()


def test_a_bid_priced_above_zero_is_sealed(lot: dict[str, Path]) -> None:
    bid, out = lot["dir"] / "bid.zip", lot["dir"] / "bid.env"
    bid.write_bytes(bid_archive(form("0.01")))
    done = bidroom(*seal_args(lot, bid, out, form_check=True), password=PASSWORD)
    assert done.returncode == 0, done.stderr
    back = lot["dir"] / "back.zip"
    opened = bidroom("bid", "open", out, "--key", lot["key"], "-o", back, password=PASSWORD)
    assert opened.returncode == 0 and back.read_bytes() == bid.read_bytes()
