"""The installed package works outside the source tree.

A wheel is built from a copy of the sources, installed into a fresh virtualenv in a
temporary folder, and run from a folder that is not the checkout: every package, the
intent model, the sample mail, the UI stylesheet and the knowledge base (`kb/`, installed
as `gateway/kb/`) must be inside it. The new virtualenv borrows the project virtualenv's
third-party packages through a `.pth` line (no network, no second copy of spaCy); the
project's own editable install there is not activated, and the test checks that
`gateway` is imported from the new virtualenv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "nlp", "storage", "review_tui")
PIP = [sys.executable, "-m", "pip"]
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")


def shipped_files() -> list[Path]:
    """Every file under our packages, caches aside."""
    return [
        path
        for top in PACKAGES
        for path in sorted((ROOT / top).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def source_packages() -> set[str]:
    """Every folder under our packages that holds a file to ship, as a dotted name."""
    return {".".join(path.parent.relative_to(ROOT).parts) for path in shipped_files()}


def test_pyproject_lists_every_package_and_data_folder() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["packages"]) == source_packages() | {"gateway.kb"}
    assert setuptools["package-dir"] == {"gateway.kb": "kb"}


def run(args: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def build_wheel(tmp: Path, env: dict[str, str]) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in (*PACKAGES, "kb"):
        shutil.copytree(ROOT / name, src / name, ignore=SKIP)
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    out = run([*PIP, "wheel", "-v", *offline, "-w", str(tmp / "dist"), str(src)], cwd=tmp, env=env)
    warnings = [line for line in out.splitlines() if re.search("warning", line, re.I)]
    assert warnings == []
    (wheel,) = (tmp / "dist").glob("supportgate-*.whl")
    return wheel


def check_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        *(path.relative_to(ROOT).as_posix() for path in shipped_files()),
        *(f"gateway/kb/{path.name}" for path in (ROOT / "kb").glob("*.md")),
    ]
    for name in ("review_tui/app.tcss", "gateway/samples/01.eml", "nlp/data/intent_model/"):
        assert any(e.startswith(name) for e in expected)
    assert [name for name in expected if name not in names] == []


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SUPPORTGATE"))}
    wheel = build_wheel(tmp_path, env)
    check_contents(wheel)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    # The wheel goes in before the borrowed packages are visible, so pip sees a clean env.
    run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        cwd=tmp_path,
        env=env,
    )
    site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp_path,
        env=env,
    ).strip()
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run([str(python), "-c", "import gateway; print(gateway.__file__)"], cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(venv)

    supportgate = str(venv / "bin" / "supportgate")
    out = run([supportgate, "demo", "--no-ui", "--workdir", "demo"], cwd=work, env=env)
    drafted = re.search(r"demo: (\d+) drafted", out)
    assert drafted and int(drafted.group(1)) > 0, out
    assert "already stored" in out

    (work / "config.toml").write_text('[storage]\nurl = "sqlite:///q.sqlite3"\n')
    out = run([supportgate, "check-config"], cwd=work, env=env)
    assert f"config: {work / 'config.toml'}" in out
    shipped_kb = Path(site) / "gateway" / "kb"
    assert f"knowledge base: {shipped_kb} (shipped with supportgate)" in out
    assert "config OK" in out
