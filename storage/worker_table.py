"""The table of supervised processes, apart from the code that writes it so that
storage/db.py can register it without importing itself back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from storage.models import UTCDateTime, utcnow


class WorkerProcess(SQLModel, table=True):
    """One supervised process slot ("analysis-1", "sender") on one host."""

    host: str = Field(primary_key=True, max_length=255)
    name: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=32)
    pid: int | None = None
    # running | restarting (waiting out its backoff) | stopped
    state: str = Field(default="running", max_length=16)
    restarts: int = 0
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_exit: str | None = Field(default=None, sa_column=Column(Text))
    last_exit_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    supervisor_pid: int | None = None
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
