"""What the long-running commands share: the database, the runners, this process's name.

`serve`, `process` and `demo` all open the engine and build the same runner list here,
so a change to either (a new runner, claim recovery) reaches every command at once.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from gateway.config import Config
from gateway.runner import RecoveryRunner, Runner, recover
from storage.db import init_db, make_engine

log = logging.getLogger("supportgate")


def open_engine(config: Config, *, recover_claims: bool = False, redoable: bool = False) -> Engine:
    """The database, with tables created; runners first hand back abandoned claims.
    `redoable`: only analysis writes through it (see `storage.db.make_engine`)."""
    engine = make_engine(config.database_url, redoable=redoable)
    init_db(engine)
    if recover_claims:
        recover(
            engine,
            stale_after_seconds=config.runner.stale_after_seconds,
            max_attempts=config.runner.max_attempts,
        )
    return engine


def build_runners(config: Config, engine: Engine) -> list[Runner]:
    from gateway.conversation.pipeline import AnalysisRunner

    runners: list[Runner] = [
        RecoveryRunner(
            engine,
            stale_after_seconds=config.runner.stale_after_seconds,
            max_attempts=config.runner.max_attempts,
            interval=max(config.runner.stale_after_seconds / 2, 1.0),
        ),
        AnalysisRunner(config, engine),
    ]
    if config.sender.enabled:
        try:
            from gateway.outbound.sender import SenderRunner
        except ImportError:
            log.error("[sender] enabled but the sender is not available")
        else:
            runners.append(SenderRunner(config, engine))
    return runners


def worker_prefix() -> str:
    """What every runner of this process puts in front of its worker name."""
    from gateway.conversation.pipeline import worker_prefix as prefix

    return prefix()
