"""Fixtures of the IMAP tests: a config factory for one mailbox on the test Dovecot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.config import Config
from tests.support.dovecot import Dovecot, mailbox_section, password_env


@pytest.fixture
def mailbox_config(
    dovecot: Dovecot, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Config]:
    """Config with one `[[imap]]` mailbox on `dovecot`, its password in the environment;
    keyword arguments override the mailbox's settings."""
    for var, value in password_env(dovecot).items():
        monkeypatch.setenv(var, value)

    def factory(**overrides: Any) -> Config:
        return make_config(imap=[mailbox_section(dovecot, **overrides)])

    return factory
