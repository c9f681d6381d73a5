"""A newcomer's first commands: bare `supportgate`, `check-config`, `export | head`, `demo`.

Each one either works or says exactly what to change; none ends in a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import shipped_kb_dir

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "gateway" / "samples"
N_SAMPLES = len(list(SAMPLES.glob("*.eml")))


def write_config(folder: Path, extra: str = "") -> Path:
    config = folder / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{folder / "q.sqlite3"}"\n{extra}')
    return config


def test_bare_command_lists_the_commands_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("serve", "ingest", "status", "check-config", "review", "demo"):
        assert command in out


def test_check_config_names_the_file_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "check-config"]) == 0
    out = capsys.readouterr().out
    assert f"config: {config.resolve()}" in out
    # No kb/ beside the file: the articles shipped with supportgate are used, and said so.
    assert f"knowledge base: {shipped_kb_dir()} (shipped with supportgate)" in out


def test_check_config_says_when_only_defaults_are_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SUPPORTGATE_CONFIG", raising=False)
    assert main(["check-config"]) == 0
    assert "config: built-in defaults, no config file found" in capsys.readouterr().out


def test_kb_beside_the_config_file_wins_over_the_shipped_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "kb").mkdir()
    shutil.copy(ROOT / "kb" / "disk-full.md", tmp_path / "kb")
    config = write_config(tmp_path, '[kb]\ndir = "kb"\n')
    assert main(["--config", str(config), "check-config"]) == 0
    assert f"knowledge base: {tmp_path / 'kb'}, 1 article(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[kb]\ndir = "articles"\n',
            "[kb] dir: the knowledge-base folder {tmp}/articles does not exist; set [kb] dir",
        ),
        ('[kb]\ndocs_dir = "docs"\n', "[kb] docs_dir: the folder {tmp}/docs does not exist"),
        ('[nlp]\nmodel_dir = "model"\n', "[nlp] model_dir: {tmp}/model does not exist"),
        ('[nlp]\nmodel_dir = "."\n', "[nlp] model_dir: {tmp} has no meta.json"),
    ],
)
def test_check_config_fails_on_folders_that_are_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, expected: str
) -> None:
    config = write_config(tmp_path, extra)
    assert main(["--config", str(config), "check-config"]) == 1
    assert expected.format(tmp=tmp_path) in capsys.readouterr().err


def test_export_into_a_closed_pipe_ends_quietly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "ingest", str(SAMPLES)]) == 0
    capsys.readouterr()
    # Like `supportgate export | head -1`, but the reader is gone before the first write.
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_demo_uses_the_kb_and_nlp_of_config_and_counts_what_it_already_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    team = tmp_path / "team"
    (team / "articles").mkdir(parents=True)
    shutil.copy(ROOT / "kb" / "disk-full.md", team / "articles")
    config = write_config(team, '[kb]\ndir = "articles"\n[nlp]\nabstain_threshold = 0.7\n')
    workdir = tmp_path / "demo"
    # The demo reads only the file named with --config, never the environment's.
    monkeypatch.setenv("SUPPORTGATE_CONFIG", str(tmp_path / "absent.toml"))

    assert main(["--config", str(config), "demo", "--workdir", str(workdir), "--no-ui"]) == 0
    out = capsys.readouterr().out
    assert f"{N_SAMPLES} new (0 already stored)" in out
    demo_config = (workdir / "config.toml").read_text()
    assert f'dir = "{(team / "articles").as_posix()}"' in demo_config
    assert "abstain_threshold = 0.7" in demo_config

    # Again in the same folder: nothing new, and it says so.
    assert main(["--config", str(config), "demo", "--workdir", str(workdir), "--no-ui"]) == 0
    out = capsys.readouterr().out
    assert f"accepted by the SMTP front door: 0 new ({N_SAMPLES} already stored)" in out
    assert " drafted, waiting for review in " in out


def test_demo_refuses_a_config_whose_kb_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, '[kb]\ndir = "articles"\n')
    args = ["--config", str(config), "demo", "--workdir", str(tmp_path / "demo"), "--no-ui"]
    assert main(args) == 1
    assert "[kb] dir: the knowledge-base folder" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_ingest_refuses_files_that_are_not_mail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "q.sqlite3"}"\n')
    readme = tmp_path / "README.md"
    readme.write_text("# Notes\n\nNot a mail at all.\n")
    good = tmp_path / "ok.eml"
    good.write_bytes(b"From: a@customer.example\r\nSubject: help\r\n\r\nplease help\r\n")
    code = main(["--config", str(config), "ingest", "/bin/ls", str(readme), str(good)])
    captured = capsys.readouterr()
    assert code == 1
    assert "ingested 1 new, 0 duplicate, 0 failed, 2 refused (not mail)" in captured.out
    assert "refused: /bin/ls: binary data" in captured.err
    assert f"refused: {readme}: no header block" in captured.err
