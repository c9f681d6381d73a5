"""`supportgate status` and `supportgate check-config`: is the gateway healthy, and is
its configuration complete? Both read only; both are safe to run from cron.

`check-config` says which file it read and checks what the file points at (secrets in
the environment, the knowledge-base folder, `[kb] docs_dir`, `[nlp] model_dir`), so a
first run fails here, with the key to change, rather than later in the runners.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.cli.runtime import open_engine
from gateway.config import Config, find_config_path, missing_secrets, shipped_kb_dir
from storage.desk.report import desk_report
from storage.models import Draft, ImapCheckpoint, Message, MessageState, Outbox, utcnow
from storage.workers import WorkerProcess, list_workers


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("status", help="queue counts, oldest unreviewed age, failures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("check-config", help="validate config.toml and the secrets it names")
    p.set_defaults(func=cmd_check_config)


def collect_status(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        by_state = dict(
            session.exec(select(Message.state, func.count()).group_by(Message.state)).all()
        )
        drafts = dict(session.exec(select(Draft.state, func.count()).group_by(Draft.state)).all())
        outbox = dict(session.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all())
        # How long the customer has waited: by the mail's own time, not our arrival.
        oldest = session.exec(
            select(func.min(Message.written_at)).where(
                col(Message.state).in_([MessageState.RECEIVED, MessageState.DRAFTED])
            )
        ).one()
        # How far analysis is behind: by arrival.
        lag_from = session.exec(
            select(func.min(Message.received_at)).where(Message.state == MessageState.RECEIVED)
        ).one()
        failed = session.exec(
            select(Outbox).where(col(Outbox.state).in_(["failed", "uncertain"])).limit(20)
        ).all()
        mailboxes = session.exec(select(ImapCheckpoint).order_by(col(ImapCheckpoint.mailbox))).all()
        desk = desk_report(session, now=utcnow())
    age, lag = _seconds_since(oldest), _seconds_since(lag_from)
    return {
        "messages": by_state,
        "total": sum(by_state.values()),
        "shunted": by_state.get(MessageState.SHUNTED, 0),
        "oldest_unreviewed_seconds": age,
        "analysis_lag_seconds": lag,
        "drafts": drafts,
        "desk": desk,
        "outbox": outbox,
        "failed_sends": [
            {"id": o.id, "to": o.to_addrs, "state": o.state, "error": o.last_error} for o in failed
        ],
        "workers": [_worker(w) for w in list_workers(engine)],
        "mailboxes": [
            {
                "mailbox": m.mailbox,
                "folder": m.folder,
                "last_uid": m.last_uid,
                "uidvalidity": m.uidvalidity,
                "last_sync_at": m.last_sync_at.isoformat() if m.last_sync_at else None,
                "last_error": m.last_error,
                "last_error_at": m.last_error_at.isoformat() if m.last_error_at else None,
                # The error row is kept for the record; a later successful sync heals it.
                "failing": m.last_error_at is not None
                and (m.last_sync_at is None or m.last_error_at > m.last_sync_at),
            }
            for m in mailboxes
        ],
    }


def _worker(row: WorkerProcess) -> dict[str, Any]:
    """A supervised process as recorded, and whether it is alive by this host's lights."""
    alive = row.state == "running"
    if alive and row.pid and row.host == socket.gethostname():
        alive = _pid_alive(row.pid)  # the supervisor may have died without a word
    return {
        "name": row.name,
        "role": row.role,
        "host": row.host,
        "pid": row.pid,
        "state": row.state,
        "alive": alive,
        "restarts": row.restarts,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "last_exit": row.last_exit,
        "last_exit_at": row.last_exit_at.isoformat() if row.last_exit_at else None,
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but a process
    return True


def _seconds_since(when: Any) -> float | None:
    if not isinstance(when, datetime):
        return None
    if when.tzinfo is None:  # an aggregate over SQLite comes back without its zone
        when = when.replace(tzinfo=UTC)
    return (utcnow() - when).total_seconds()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    report = collect_status(open_engine(config))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"messages: {report['total']}")
    for state in MessageState:
        print(f"  {state.value:<11} {report['messages'].get(state.value, 0)}")
    print(f"oldest unreviewed: {_age(report['oldest_unreviewed_seconds'])} (since written)")
    print(f"analysis lag: {_age(report['analysis_lag_seconds'])} (oldest unanalysed, by arrival)")
    print(f"shunted: {report['shunted']}")
    desk = report["desk"]
    print(f"reply targets breached: {desk['breached_count']}")
    for team, row in sorted(desk["oldest_waiting_by_team"].items()):
        print(f"  oldest waiting in {team}: #{row['ticket']}, {_age(row['waiting_seconds'])}")
    if report["drafts"]:
        print("drafts: " + ", ".join(f"{k} {v}" for k, v in sorted(report["drafts"].items())))
    if report["outbox"]:
        print("outbox: " + ", ".join(f"{k} {v}" for k, v in sorted(report["outbox"].items())))
    waiting = report["outbox"].get("pending", 0)
    if waiting and not config.sender.enabled:
        print(f"note: [sender] is disabled; {waiting} released repl(ies) wait in the outbox")
    for item in report["failed_sends"]:
        print(f"  send #{item['id']} {item['state']}: {item['error']}")
    for w in report["workers"]:
        print(_worker_line(w))
    for mb in report["mailboxes"]:
        health = "FAILING" if mb["failing"] else "ok"
        last_sync = mb["last_sync_at"] or "never"
        line = f"imap {mb['mailbox']}/{mb['folder']}: {health}; last sync {last_sync}"
        if mb["last_error"]:
            line += f"; last error {mb['last_error_at']}: {mb['last_error']}"
        print(line)
    return 0


def _worker_line(w: dict[str, Any]) -> str:
    health = "alive" if w["alive"] else ("gone" if w["state"] == "running" else w["state"])
    line = f"worker {w['name']}: {health}, pid {w['pid']}, {w['restarts']} restart(s)"
    if w["last_exit"]:
        line += f"; last exit {w['last_exit_at']}: {w['last_exit']}"
    return line


def missing_paths(config: Config, source: str) -> list[str]:
    """Folders the config names that are not there, each with the key that fixes it."""
    problems = []
    kb_dir = config.resolve_path(config.kb.dir)
    if not kb_dir.is_dir():
        problems.append(
            f"[kb] dir: the knowledge-base folder {kb_dir} does not exist; "
            f"set [kb] dir in {source} to the folder of your Markdown articles"
        )
    if config.kb.docs_dir:
        docs = config.resolve_path(config.kb.docs_dir)
        if not docs.is_dir():
            problems.append(
                f"[kb] docs_dir: the folder {docs} does not exist; "
                f'fix it in {source}, or set docs_dir = "" to quote no docs of your own'
            )
    if config.nlp.model_dir:
        model = config.resolve_path(config.nlp.model_dir)
        if not (model / "meta.json").is_file():
            what = "has no meta.json" if model.is_dir() else "does not exist"
            problems.append(
                f"[nlp] model_dir: {model} {what}, so it is not an intent model "
                f"(`supportgate train --out DIR` makes one); fix it in {source}, "
                f'or set model_dir = "" for the shipped model'
            )
    return problems


def describe_kb(config: Config) -> str:
    kb_dir = config.resolve_path(config.kb.dir)
    articles = sum(1 for p in kb_dir.glob("*.md") if p.name.lower() != "readme.md")
    shipped = " (shipped with supportgate)" if kb_dir == shipped_kb_dir() else ""
    return f"knowledge base: {kb_dir}{shipped}, {articles} article(s)"


def cmd_check_config(args: argparse.Namespace, config: Config) -> int:
    path: Path | None = find_config_path(args.config)
    if path is None:
        print("config: built-in defaults, no config file found")
    else:
        print(f"config: {path.resolve()}")
    source = str(path) if path else "a config.toml"
    problems = missing_secrets(config) + missing_paths(config, source)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    mailboxes = ", ".join(m.name for m in config.imap) or "none"
    smtp = f"on {config.smtp.host}:{config.smtp.port}" if config.smtp.enabled else "off"
    print(describe_kb(config))
    print(
        f"config OK: database {config.database_url}; SMTP {smtp}"
        f"; IMAP mailboxes: {mailboxes}; sender {'on' if config.sender.enabled else 'off'}"
    )
    return 0
