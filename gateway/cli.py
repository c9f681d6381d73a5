"""`supportgate` command line: the composition root that wires config, storage and runners.

Command names and flags are a public contract (operators script them); each handler is
`handler(args, config) -> exit code`. Optional command groups live in their own modules
(`gateway.cli_nlp`, `gateway.cli_review`) and register themselves, so heavy imports
(spaCy, Textual) happen only when such a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import mailbox
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config, ConfigError, find_config_path, load_config, missing_secrets
from gateway.ingest import ingest
from gateway.runner import RecoveryRunner, Runner, recover, run_forever, run_until_idle
from storage.db import init_db, make_engine
from storage.models import (
    AnalysisRecord,
    Draft,
    ImapCheckpoint,
    Message,
    MessageState,
    Outbox,
    utcnow,
)
from storage.queue import release_claims

log = logging.getLogger("supportgate")

EXTRA_COMMAND_MODULES = ("gateway.cli_nlp", "gateway.cli_review", "gateway.patterns")


def open_engine(config: Config, *, recover_claims: bool = False) -> Engine:
    """The database, with tables created; runners first hand back abandoned claims."""
    engine = make_engine(config.database_url)
    init_db(engine)
    if recover_claims:
        recover(
            engine,
            stale_after_seconds=config.runner.stale_after_seconds,
            max_attempts=config.runner.max_attempts,
        )
    return engine


def build_runners(config: Config, engine: Engine) -> list[Runner]:
    from gateway.pipeline import AnalysisRunner

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
            from gateway.sender import SenderRunner
        except ImportError:
            log.error("[sender] enabled but the sender is not available")
        else:
            runners.append(SenderRunner(config, engine))
    return runners


# --- serve -----------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config, recover_claims=True)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    controller = None
    if config.smtp.enabled:
        from gateway.smtp import make_controller

        controller = make_controller(config, engine)
        controller.start()
        log.info("SMTP front door on %s:%s", config.smtp.host, config.smtp.port)
        print(f"supportgate: SMTP listening on {config.smtp.host}:{config.smtp.port}", flush=True)
    threads: list[threading.Thread] = []
    if config.imap:
        from gateway.imap import run_pollers

        threads.extend(run_pollers(config, engine, stop))
    if not args.no_runners:
        runners = build_runners(config, engine)
        worker = threading.Thread(
            target=run_forever,
            args=(runners, stop),
            kwargs={"poll_interval": config.runner.poll_interval},
            name="runners",
            daemon=True,
        )
        worker.start()
        threads.append(worker)
    try:
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        if controller is not None:
            controller.stop()
        for thread in threads:
            thread.join(timeout=10)
        if runners_thread_alive(threads):
            log.warning("runners still busy at shutdown; their claims are handed back")
        # Whatever this process still holds goes straight back to the queue rather than
        # waiting `stale_after_seconds` for recovery in the next process.
        released = release_claims(engine, worker_prefix=worker_prefix())
        if released:
            log.info("handed back %d claimed message(s)", released)
        engine.dispose()
    print("supportgate: stopped", flush=True)
    return 0


def runners_thread_alive(threads: list[threading.Thread]) -> bool:
    return any(t.name == "runners" and t.is_alive() for t in threads)


def worker_prefix() -> str:
    """What every runner of this process puts in front of its worker name."""
    from gateway.pipeline import worker_prefix as prefix

    return prefix()


# --- ingest ----------------------------------------------------------------------------


def iter_messages(paths: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) for .eml files, directories of them, and mbox files."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from iter_messages([str(child)])
        elif _is_mbox(path):
            box = mailbox.mbox(str(path), create=False)
            try:
                for i, key in enumerate(box.iterkeys()):
                    yield f"{path}#{i + 1}", box.get_bytes(key)
            finally:
                box.close()
        else:
            yield str(path), path.read_bytes()


def _is_mbox(path: Path) -> bool:
    if path.suffix.lower() == ".mbox":
        return True
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def cmd_ingest(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config)
    if args.imap:
        from gateway.imap import ImapError, backfill

        try:
            since = date.fromisoformat(args.since) if args.since else None
        except ValueError:
            print(f"ingest: --since expects YYYY-MM-DD, got {args.since!r}", file=sys.stderr)
            return 2
        try:
            stored = backfill(config, engine, args.imap, since=since, progress=True)
        except ImapError as exc:
            print(f"error: imap {args.imap}: {exc}", file=sys.stderr)
            return 1
        print(f"imap {args.imap}: {stored} new message(s) stored")
        return 0
    if not args.paths:
        print(
            "ingest: give .eml files, directories or mbox files (or --imap NAME)", file=sys.stderr
        )
        return 2
    new = dupes = failed = 0
    for label, raw in _safe_iter(args.paths):
        if raw is None:
            failed += 1
            continue
        try:
            result = ingest(engine, raw, source="file", envelope_from=None)
        except Exception as exc:
            print(f"error: {label}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if result.duplicate:
            dupes += 1
        else:
            new += 1
    print(f"ingested {new} new, {dupes} duplicate, {failed} failed")
    return 1 if failed else 0


def _safe_iter(paths: Sequence[str]) -> Iterator[tuple[str, bytes | None]]:
    for name in paths:
        try:
            yield from iter_messages([name])
        except OSError as exc:
            print(f"error: {name}: {exc.strerror or exc}", file=sys.stderr)
            yield name, None


# --- process ---------------------------------------------------------------------------


def cmd_process(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config, recover_claims=True)
    runners = build_runners(config, engine)
    if args.until_idle:
        handled = run_until_idle(runners)
        print(f"processed {handled} item(s); idle")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_forever(runners, stop, poll_interval=config.runner.poll_interval)
    return 0


# --- status ----------------------------------------------------------------------------


def collect_status(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        by_state = dict(
            session.exec(select(Message.state, func.count()).group_by(Message.state)).all()
        )
        drafts = dict(session.exec(select(Draft.state, func.count()).group_by(Draft.state)).all())
        outbox = dict(session.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all())
        oldest = session.exec(
            select(func.min(Message.received_at)).where(
                col(Message.state).in_([MessageState.RECEIVED, MessageState.DRAFTED])
            )
        ).one()
        failed = session.exec(
            select(Outbox).where(col(Outbox.state).in_(["failed", "uncertain"])).limit(20)
        ).all()
        mailboxes = session.exec(select(ImapCheckpoint).order_by(col(ImapCheckpoint.mailbox))).all()
    if isinstance(oldest, datetime) and oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    age = (utcnow() - oldest).total_seconds() if isinstance(oldest, datetime) else None
    return {
        "messages": by_state,
        "total": sum(by_state.values()),
        "shunted": by_state.get(MessageState.SHUNTED, 0),
        "oldest_unreviewed_seconds": age,
        "drafts": drafts,
        "outbox": outbox,
        "failed_sends": [
            {"id": o.id, "to": o.to_addrs, "state": o.state, "error": o.last_error} for o in failed
        ],
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
    print(f"oldest unreviewed: {_age(report['oldest_unreviewed_seconds'])}")
    print(f"shunted: {report['shunted']}")
    if report["drafts"]:
        print("drafts: " + ", ".join(f"{k} {v}" for k, v in sorted(report["drafts"].items())))
    if report["outbox"]:
        print("outbox: " + ", ".join(f"{k} {v}" for k, v in sorted(report["outbox"].items())))
    waiting = report["outbox"].get("pending", 0)
    if waiting and not config.sender.enabled:
        print(f"note: [sender] is disabled; {waiting} released repl(ies) wait in the outbox")
    for item in report["failed_sends"]:
        print(f"  send #{item['id']} {item['state']}: {item['error']}")
    for mb in report["mailboxes"]:
        health = "FAILING" if mb["failing"] else "ok"
        last_sync = mb["last_sync_at"] or "never"
        line = f"imap {mb['mailbox']}/{mb['folder']}: {health}; last sync {last_sync}"
        if mb["last_error"]:
            line += f"; last error {mb['last_error_at']}: {mb['last_error']}"
        print(line)
    return 0


# --- export ----------------------------------------------------------------------------


def export_rows(engine: Engine) -> Iterator[dict[str, Any]]:
    with Session(engine) as session:
        last_id = 0
        while True:
            batch = session.exec(
                select(Message)
                .where(col(Message.id) > last_id)
                .order_by(col(Message.id))
                .limit(500)
            ).all()
            if not batch:
                return
            ids = [m.id for m in batch]
            analyses = {
                a.message_pk: a
                for a in session.exec(
                    select(AnalysisRecord).where(col(AnalysisRecord.message_pk).in_(ids))
                ).all()
            }
            drafts = {
                d.message_pk: d
                for d in session.exec(select(Draft).where(col(Draft.message_pk).in_(ids))).all()
            }
            for m in batch:
                pk = int(m.id or 0)
                yield _export_row(m, analyses.get(pk), drafts.get(pk))
            last_id = int(batch[-1].id or 0)


def _export_row(m: Message, a: AnalysisRecord | None, d: Draft | None) -> dict[str, Any]:
    parsed = m.parsed or {}
    row: dict[str, Any] = {
        "id": m.id,
        "ticket_id": m.ticket_id,
        "message_id": m.message_id,
        "direction": m.direction,
        "source": m.source,
        "from": m.from_addr,
        "to": m.to_addrs,
        "subject": m.subject,
        "received_at": m.received_at.isoformat(),
        "state": m.state,
        "shunt_reason": m.error if m.state == MessageState.SHUNTED else None,
        "suppression_reason": m.suppression_reason,
        "thread_signal": m.thread_signal,
        "body": parsed.get("text"),
        "attachments": [
            {"name": x.get("name"), "size": x.get("size")} for x in parsed.get("attachments", [])
        ],
        "defects": parsed.get("defects", []),
    }
    if a is not None:
        row.update(
            intent=a.intent,
            confidence=a.confidence,
            abstained=a.abstained,
            scores=a.scores,
            entities=a.entities,
            log_findings=a.log_findings,
            model_version=a.model_version,
        )
    if d is not None:
        row["suggestions"] = d.suggestions
        row["draft"] = {
            "id": d.id,
            "state": d.state,
            "subject": d.subject,
            "body": d.body,
            "rationale": d.rationale,
            "unfilled": d.unfilled,
            "version": d.version,
        }
    return row


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        for row in export_rows(engine):
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


# --- check-config ----------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace, config: Config) -> int:
    problems = missing_secrets(config)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    mailboxes = ", ".join(m.name for m in config.imap) or "none"
    smtp = f"on {config.smtp.host}:{config.smtp.port}" if config.smtp.enabled else "off"
    print(
        f"config OK: database {config.database_url}; SMTP {smtp}"
        f"; IMAP mailboxes: {mailboxes}; sender {'on' if config.sender.enabled else 'off'}"
    )
    return 0


# --- demo ------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    from gateway.demo import run_demo

    return run_demo(workdir=Path(args.workdir), open_ui=not args.no_ui)


# --- wiring ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supportgate",
        description="Email gateway with a human review queue for technical-support teams.",
    )
    parser.add_argument(
        "--config", help="config file (default: $SUPPORTGATE_CONFIG or ./config.toml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the SMTP front door, IMAP pollers and runners")
    p.add_argument("--no-runners", action="store_true", help="accept mail only; do not analyse")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ingest", help="store .eml files, directories, mbox files (or IMAP history)")
    p.add_argument("paths", nargs="*", help=".eml files, directories of them, or mbox files")
    p.add_argument("--imap", metavar="NAME", help="backfill the [[imap]] mailbox NAME instead")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="with --imap: only mail since this date")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("process", help="run the runners (analysis, sender)")
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is claimable")
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("status", help="queue counts, oldest unreviewed age, failures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("export", help="one JSON object per message")
    p.add_argument("--format", choices=["jsonl"], default="jsonl")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("check-config", help="validate config.toml and the secrets it names")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("demo", help="run everything on sample mail in a local work folder")
    p.add_argument("--workdir", default="demo-work", help="work folder (default: ./demo-work)")
    p.add_argument("--no-ui", action="store_true", help="print a summary instead of the review UI")
    p.set_defaults(func=cmd_demo, no_config=True)

    for name in EXTRA_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiosmtpd logs every SMTP command at INFO; that is a flood, not an audit trail.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        if getattr(args, "no_config", False):
            config = Config()
        else:
            config = load_config(find_config_path(args.config))
            logging.getLogger().setLevel(logging.DEBUG if args.verbose else config.logging.level)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, config))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
