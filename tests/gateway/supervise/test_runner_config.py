"""`[runner] workers` and `nice`: their defaults, their limits, and the children `serve`
starts from them; `process --role` runs one kind of runner, or says there is none."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.cli.serve import worker_specs
from gateway.config import Config, ConfigError, RunnerConfig


def test_defaults_leave_one_core_to_the_front_door() -> None:
    runner = RunnerConfig()
    assert runner.workers == max((os.cpu_count() or 1) - 1, 1)
    assert runner.nice == 10


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("workers", 0, "between 1 and 256"),
        ("workers", True, "expected an integer"),
        ("nice", 20, "between 0 and 19"),
        ("nice", -5, "between 0 and 19"),
    ],
)
def test_out_of_range_values_are_refused_by_name(
    make_config: Callable[..., Config], key: str, value: object, wanted: str
) -> None:
    with pytest.raises(ConfigError, match=rf"\[runner\] {key}: .*{wanted}"):
        make_config(runner={key: value})


def test_serve_starts_the_configured_workers_and_the_sender(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text("")
    args = argparse.Namespace(config=str(config_file), verbose=False)
    specs = worker_specs(args, make_config(runner={"workers": 3}, sender={"enabled": True}))
    assert [(s.name, s.role) for s in specs] == [
        ("analysis-1", "analysis"),
        ("analysis-2", "analysis"),
        ("analysis-3", "analysis"),
        ("sender", "sender"),
    ]
    assert specs[0].argv[-6:] == (
        "--config",
        str(config_file.resolve()),
        "process",
        "--role",
        "analysis",
        "--supervised",
    )
    assert [s.role for s in worker_specs(args, make_config())] == ["analysis"] * (
        RunnerConfig().workers
    )


def test_process_role_without_that_runner_says_so(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{db_path}"\n')
    assert main(["--config", str(config), "process", "--role", "sender", "--until-idle"]) == 2
    assert main(["--config", str(config), "process", "--role", "analysis", "--until-idle"]) == 0
    assert "processed 0 item(s); idle" in capsys.readouterr().out
