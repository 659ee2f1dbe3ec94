"""Every machine installs the same packages: uv.lock pins them, and the venv the tests run in is
exactly what it lists (issue 13, section 1: pip once resolved redis 8.2.0 and mypy 2.4.1 on one
machine and older versions on the next, and the same commit failed lint on one of them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"


def locked_versions() -> dict[str, set[str]]:
    """Each package's locked versions: a universal lock may hold several, one per Python range."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    return versions


def uv_lock_locked(project: Path) -> subprocess.CompletedProcess[str]:
    """What `make` runs before anything else (`uv sync --locked` checks the same)."""
    return subprocess.run(
        [str(UV), "lock", "--locked"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": sys.executable},
    )


def test_every_installed_package_is_the_locked_version() -> None:
    locked = locked_versions()
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) in locked
    }
    for name in ("redis", "mypy", "starlette", "sqlalchemy", "cryptography", "pytest"):
        assert name in installed, f"{name} is locked and must be installed"
    wrong = {n: (v, locked[n]) for n, v in installed.items() if v not in locked[n]}
    assert wrong == {}, f"installed (version, locked version) differ: {wrong}"
    assert canonicalize_name("bidroom") in locked, "the project itself is in the lock"


def test_the_lock_agrees_with_pyproject(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    agreed = uv_lock_locked(tmp_path)
    assert agreed.returncode == 0, agreed.stderr


def test_a_pyproject_that_disagrees_with_the_lock_fails_the_install(tmp_path: Path) -> None:
    for name in ("uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    widened = project.replace('"redis>=5.0,<9"', '"redis>=5.0,<8"')
    assert widened != project, "the test's edit must change pyproject.toml"
    (tmp_path / "pyproject.toml").write_text(widened, encoding="utf-8")
    disagreed = uv_lock_locked(tmp_path)
    assert disagreed.returncode != 0
    assert "needs to be updated" in disagreed.stderr, disagreed.stderr
