"""Where the knowledge base shipped with supportgate lives, checkout or installed.

Teams edit the articles at the top of the repository (`kb/`); a wheel installs the same
files as `gateway/kb/`. The default `[kb] dir = "kb"` means "kb/ beside the config file
if there is one, else the shipped articles", so an installed `supportgate` works from any
folder while a checkout keeps using its own `kb/`.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

from gateway.config.sections import Config

DEFAULT_KB_DIR = "kb"


def shipped_kb_dir() -> Path:
    """The shipped articles: `gateway/kb/` when installed, else the checkout's `kb/`."""
    installed = resources.files("gateway").joinpath("kb")
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "kb"


def with_default_kb(config: Config) -> Config:
    """`config` with the default `[kb] dir` made absolute: kb/ beside it, else shipped."""
    if config.kb.dir != DEFAULT_KB_DIR:
        return config
    beside = config.base_dir / DEFAULT_KB_DIR
    kb_dir = beside if beside.is_dir() else shipped_kb_dir()
    return dataclasses.replace(config, kb=dataclasses.replace(config.kb, dir=str(kb_dir)))
