"""The dependency rule of DESIGN.md, enforced: leaves stay leaves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("textual", "aiosmtpd", "imapclient", "gateway", "review_tui", "smtplib")


def modules_after_import(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _top(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods}


@pytest.mark.parametrize(
    "statement",
    [
        "import storage, storage.models, storage.db, storage.queue, storage.audit",
        "import nlp, nlp.types",
    ],
)
def test_leaf_packages_import_nothing_of_ours_or_io_libraries(statement: str) -> None:
    loaded = _top(modules_after_import(statement))
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)


def test_all_nlp_and_storage_modules_respect_the_rule() -> None:
    mods = [
        f"{pkg}.{p.stem}"
        for pkg in ("nlp", "storage")
        for p in sorted((ROOT / pkg).glob("*.py"))
        if p.stem != "__init__"
    ]
    loaded = _top(modules_after_import("\n".join(f"import {m}" for m in mods)))
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)


def test_importing_nlp_types_does_not_load_spacy() -> None:
    assert "spacy" not in _top(modules_after_import("import nlp.types"))


def test_review_tui_never_imports_gateway() -> None:
    if not (ROOT / "review_tui" / "app.py").exists():
        pytest.fail("review_tui/app.py is missing")
    loaded = _top(modules_after_import("import review_tui.app"))
    assert "gateway" not in loaded
    assert not loaded & {"aiosmtpd", "imapclient", "smtplib", "spacy"}
