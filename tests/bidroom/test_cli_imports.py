"""The command a bidder runs loads the sealing code, not the server: `import bidroom.cli` alone
used to take 169 MiB and 2 s of CPU (the app, the evaluation, pyHanko, fpdf, aiortc), which made
`bidroom bid seal` of a large bid half as fast as the sealing code itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from certs import certificate
from cryptography import x509
from tendering import bid_archive

from ca import primitives as p

SERVER_STACK = (
    "bidroom.app",
    "bidroom.evaluation",
    "bidroom.settings",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "pydantic",
    "pyhanko",
    "fpdf",
    "aiortc",
    "av",
)


def loaded_after(code: str) -> tuple[set[str], str]:
    """The modules loaded by running ``code`` in a fresh interpreter, and what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        env={k: v for k, v in os.environ.items() if k != "BIDROOM_KEY_PASSWORD"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()), done.stdout


NOT_FOR_A_BID = ("ca.authority", "ca.shares", "ca.trust", "ca.pki", "ca.tsa", "ca.pades")


def server_modules(loaded: set[str]) -> list[str]:
    """What of the server's stack, or of the CA's and custodians' commands, ``loaded`` holds."""
    return sorted(
        m
        for m in loaded
        if m.split(".")[0] in SERVER_STACK or m in SERVER_STACK or m in NOT_FOR_A_BID
    )


def main_call(*args: str | Path) -> str:
    """Python that runs `bidroom ARGS` through the entry point, as the installed script does."""
    return f"import bidroom.cli\nassert bidroom.cli.main({[str(a) for a in args]!r}) == 0"


def test_importing_the_command_and_building_its_arguments_loads_no_server() -> None:
    loaded, _ = loaded_after("import bidroom.cli\nbidroom.cli.parser()")
    assert server_modules(loaded) == []
    assert "cryptography" not in loaded and "ca.commands" not in loaded


def test_sealing_and_opening_a_bid_load_no_server(tmp_path: Path) -> None:
    bidder, opening = p.generate_ec_key(), p.generate_ec_key()
    (tmp_path / "bidder.key").write_bytes(p.dump_private_key(bidder))
    cert = x509.load_der_x509_certificate(certificate(bidder, "投标人"))
    (tmp_path / "bidder.crt").write_bytes(cert.public_bytes(p.serialization_pem()))
    (tmp_path / "opening.key").write_bytes(p.dump_private_key(opening))
    (tmp_path / "opening.pub").write_bytes(p.dump_public_pem(opening.public_key()))
    bid = tmp_path / "bid.zip"  # a bid archive: sealing reads its form first (bidroom.sealing)
    bid.write_bytes(bid_archive("L-1", "3650000.00"))
    sealed, back = tmp_path / "bid.env", tmp_path / "back.zip"
    seal = main_call(
        "bid", "seal", bid, "--lot", "L-1", "--key", tmp_path / "bidder.key",
        "--cert", tmp_path / "bidder.crt", "--opening-key", tmp_path / "opening.pub", "-o", sealed,
    )  # fmt: skip
    loaded, printed = loaded_after(seal)
    assert printed.startswith("sealed ") and "ca.envelope" in loaded
    assert server_modules(loaded) == []
    opener = main_call("bid", "open", sealed, "--key", tmp_path / "opening.key", "-o", back)
    loaded, printed = loaded_after(opener)
    assert printed.startswith("opened ") and "ca.envelope" in loaded
    assert server_modules(loaded) == []
    assert back.read_bytes() == bid.read_bytes()


def test_help_works_from_the_installed_command() -> None:
    script = Path(sys.executable).with_name("bidroom")
    done = subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for command in ("serve", "demo", "bid", "key", "ca", "evaluation", "audit"):
        assert command in done.stdout
    sub = subprocess.run(
        [script, "bid", "seal", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert sub.returncode == 0 and "--opening-key" in sub.stdout


def test_the_modules_upload_and_withdraw_run_load_no_server() -> None:
    """`bid upload` and `bid withdraw` talk to the platform over HTTP: they need no store."""
    loaded, _ = loaded_after("from bidroom import signed, tus_client\nfrom ca import commands")
    assert [m for m in server_modules(loaded) if m not in NOT_FOR_A_BID] == []


def test_the_upload_help_names_the_clients_own_retry_budget() -> None:
    from bidroom import cli, tus_client

    assert f"{tus_client.RETRY_ENV} or {tus_client.RETRY_FOR:g}" == cli.UPLOAD_RETRY_DEFAULT


def test_the_demo_flag_is_the_demo_modules_own() -> None:
    from bidroom import cli, demo

    assert demo.FORCE_NETWORK == cli.DEMO_FORCE_NETWORK
