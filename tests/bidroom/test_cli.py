"""The `bidroom` command as a newcomer meets it: one-line errors, migrate, serve, demo."""

from __future__ import annotations

import base64
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2 as httpx
from cryptography import x509
from nodes import SECRET, bidroom
from pydantic import SecretStr

from bidroom import builtin_tsa, timestamps
from ca import login
from ca import primitives as p


def sqlite(tmp_path: Path) -> dict[str, str]:
    return {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
    }


def test_serve_refuses_an_unmigrated_database_in_one_line(tmp_path: Path) -> None:
    done = bidroom("serve", env=sqlite(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bidroom: the database is at migration none, this bidroom needs 0010: "
        "run `bidroom migrate` first (not_migrated)"
    ]


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    first = bidroom("migrate", env=sqlite(tmp_path))
    assert first.returncode == 0 and "migrated from empty to 0010" in first.stderr
    again = bidroom("migrate", env=sqlite(tmp_path))
    assert again.returncode == 0 and "already at migration 0010" in again.stderr


def test_bad_settings_are_one_line_naming_the_variable(tmp_path: Path) -> None:
    done = bidroom("serve", env={**sqlite(tmp_path), "BIDROOM_PORT": "seventy"})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("bidroom: BIDROOM_PORT:")
    short = bidroom("serve", env={**sqlite(tmp_path), "BIDROOM_SECRET_KEY": "short"})
    assert short.stderr.strip().startswith("bidroom: BIDROOM_SECRET_KEY:")


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bidroom", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_without_a_secret_says_what_to_set(tmp_path: Path) -> None:
    gone = ("BIDROOM_SECRET_KEY", "BIDROOM_ROOM_SECRET", "BIDROOM_REPORT_SECRET")
    env = {k: v for k, v in os.environ.items() if k not in gone}
    env["BIDROOM_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    done = _serve(env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"bidroom: {', '.join(gone)} not set"), line
    # the built-in TSA's secret is needed only with the built-in TSA
    env = {k: v for k, v in os.environ.items() if k != "BIDROOM_TSA_SECRET"}
    env.update(sqlite(tmp_path))
    done = _serve(env)
    assert "BIDROOM_TSA_SECRET not set" in done.stderr and "Traceback" not in done.stderr


def test_serve_refuses_one_value_for_two_purposes(tmp_path: Path) -> None:
    """Each purpose its own secret: the session key given as the room secret is refused."""
    done = _serve({**os.environ, **sqlite(tmp_path), "BIDROOM_ROOM_SECRET": SECRET})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        "bidroom: BIDROOM_SECRET_KEY and BIDROOM_ROOM_SECRET hold the same value: each purpose "
        "needs a secret of its own"
    ), line


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {
        **sqlite(tmp_path),
        "BIDROOM_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:9/nothing",
    }
    done = bidroom("migrate", env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("bidroom: ") and "Traceback" not in done.stderr


def sign_in(base: str, keys: dict[str, Any]) -> dict[str, Any]:
    """Certificate login as the login page does it, with a demo person's key."""
    key = p.load_private_key(keys["key_pkcs8_pem"].encode())
    der = [
        x509.load_pem_x509_certificate(pem.encode()).public_bytes(p.serialization_der())
        for pem in (keys["certificate_pem"], *keys["chain_pem"])
    ]
    challenge = httpx.post(base + "/api/login/challenge").json()
    signature = p.sign(key, login.signed_message(challenge["origin"], challenge["challenge"]))
    body = {
        "challenge": challenge["challenge"],
        "certificate": base64.b64encode(der[0]).decode(),
        "chain": [base64.b64encode(c).decode() for c in der[1:]],
        "signature": base64.b64encode(signature).decode(),
    }
    answer = httpx.post(base + "/api/login", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_demo_prints_a_link_per_role_and_serves_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "bidroom", "demo", "--port", "0", "--var", str(tmp_path / "var")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stderr is not None
        lines: list[str] = []
        port = 0
        deadline = time.monotonic() + 60
        while not port and time.monotonic() < deadline:
            lines.append(demo.stderr.readline())
            if '"listening"' in lines[-1]:
                port = int(re.search(r'"port": (\d+)', lines[-1]).group(1))  # type: ignore[union-attr]
        text = "".join(lines)
        assert "[1/4]" in text and "[4/4]" in text
        links = re.findall(r"(http://\S+/login\.html\?demo=(\S+)&room=(\S+))", text)
        roles = re.findall(r"^  (chair|bidder|supervisor|custodian)\s", text, re.MULTILINE)
        assert roles == ["chair", *["bidder"] * 3, "supervisor", *["custodian"] * 3]
        assert [who for _, who, _ in links] == [
            "chair",
            "bidder-1",
            "bidder-2",
            "bidder-3",
            "supervisor",
            "custodian-1",
            "custodian-2",
            "custodian-3",
        ]
        assert all(link.startswith(f"http://127.0.0.1:{port}/") for link, _, _ in links)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            if httpx.get(base + "/readyz").status_code == 200:
                break
            time.sleep(0.1)
        assert httpx.get(base + "/readyz").json()["ready"] is True
        page = httpx.get(base + "/room.html")
        assert page.status_code == 200 and "<html" in page.text
        rooms = httpx.get(base + "/api/rooms").json()
        titles = sorted(r["title"].split()[0] for r in rooms if r["kind"] == "opening")
        assert titles == ["六横岛环卫一体化服务项目", "虾峙镇环卫一体化服务项目"]
        assert (tmp_path / "var" / "bidroom.db").exists()
        people = httpx.get(base + "/api/demo/people").json()
        assert [p["id"] for p in people] == [
            "chair",
            "bidder-1",
            "bidder-2",
            "bidder-3",
            "supervisor",
            "custodian-1",
            "custodian-2",
            "custodian-3",
            *[f"expert-{n}" for n in range(1, 9)],
        ]
        keys = httpx.get(base + "/api/demo/people/bidder-1").json()
        signed_in = sign_in(base, keys)
        assert signed_in["roles"] == ["bidder"]
        assert signed_in["holder"]["organisation"] == "六横海洁环境服务有限公司"
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(20)
        if demo.stderr:
            demo.stderr.close()


def test_the_registry_says_which_roles_a_holder_has(tmp_path: Path) -> None:
    env = sqlite(tmp_path)
    assert bidroom("migrate", env=env).returncode == 0
    grant = (
        "registry",
        "grant",
        "uscc:91330900MA2A0X1P2W",
        "--role",
        "bidder",
        "--name",
        "六横海洁",
    )
    assert bidroom(*grant, env=env).returncode == 0
    listed = bidroom("registry", "list", env=env)
    assert listed.stdout.splitlines() == ["uscc:91330900MA2A0X1P2W\t六横海洁\tbidder"]
    wrong = bidroom(
        "registry", "grant", "91330900MA2A0X1P2W", "--role", "bidder", "--name", "x", env=env
    )
    assert wrong.returncode == 2 and wrong.stderr.startswith("bidroom: a holder is uscc:")


def test_a_trust_store_change_is_recorded_in_the_audit_log(tmp_path: Path) -> None:
    env = sqlite(tmp_path)
    assert bidroom("migrate", env=env).returncode == 0
    made = bidroom(
        "ca", "init-root", "舟山根CA", "--dir", str(tmp_path / "root"), "--unprotected", env=env
    )
    assert made.returncode == 0, made.stderr
    store = str(tmp_path / "trust")
    added = bidroom(
        "ca", "trust", "add-root", str(tmp_path / "root" / "ca.pem"), "--store", store, env=env
    )
    assert added.returncode == 0 and "1 change(s) recorded in the audit log" in added.stdout
    again = bidroom(
        "ca", "trust", "add-root", str(tmp_path / "root" / "ca.pem"), "--store", store, env=env
    )
    assert "recorded" not in again.stdout, "adding it again changes nothing and records nothing"
    elsewhere = {**env, "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"}
    unrecorded = bidroom(
        "ca",
        "trust",
        "add-intermediate",
        str(tmp_path / "root" / "ca.pem"),
        "--store",
        str(tmp_path / "other"),
        env=elsewhere,
    )
    assert unrecorded.returncode == 3 and "--no-audit" in unrecorded.stderr
    with sqlite3.connect(tmp_path / "b.db") as db:
        rows = db.execute("select action, actor, objects from audit_entry").fetchall()
    assert [(action, actor.startswith("operator:")) for action, actor, _ in rows] == [
        ("trust.add_root", True)
    ]


def test_serve_with_a_changed_tsa_secret_refuses_in_one_line(tmp_path: Path) -> None:
    """The built-in TSA's key was locked with another BIDROOM_TSA_SECRET (the newcomer review
    saw a traceback and exit 3): one line naming the secret, exit 2, the key file untouched."""
    var = tmp_path / "var"
    earlier = SimpleNamespace(tsa_secret=SecretStr("an earlier TSA secret, since replaced" * 2))
    builtin_tsa.builtin(var / "tsa", datetime.now(UTC), timestamps.key_password(earlier))  # type: ignore[arg-type]
    key = (var / "tsa" / builtin_tsa.KEY_FILE).read_bytes()
    env = {**os.environ, **sqlite(tmp_path), "BIDROOM_VAR_DIR": str(var)}
    env.pop("BIDROOM_TSA_DIR", None)
    assert bidroom("migrate", env=env).returncode == 0
    done = _serve(env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "does not open with the password derived from BIDROOM_TSA_SECRET" in line, line
    assert line.endswith("(config)"), line
    assert (var / "tsa" / builtin_tsa.KEY_FILE).read_bytes() == key
