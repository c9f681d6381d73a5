"""`supportgate demo`: the embedded default, end to end, on the project's sample mail.

It makes a work folder with its own config and SQLite database, starts the real SMTP
front door on 127.0.0.1 (a free port), sends the sample support mails through it with
smtplib exactly as an MTA would, runs the analysis until idle, and opens the review UI.
Nothing is sent to customers: the sender stays disabled in the demo config.

The demo reads a config file only when `--config FILE` names one, and then takes just
its `[kb]` and `[nlp]` settings (your articles, docs and intent model); everything else
is the demo's own. Run again in the same folder, it says how many samples were already
stored rather than counting them as new.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import smtplib
import socket
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.cli.runtime import build_runners, open_engine
from gateway.cli.status import collect_status, missing_paths
from gateway.config import Config, load_config, shipped_kb_dir
from storage.models import Message, MessageState

DEMO_CONFIG = """\
# Written by `supportgate demo`. Edit freely; see the project's config.toml for every key.
[storage]
url = "sqlite:///supportgate.sqlite3"

[smtp]
host = "127.0.0.1"
port = {port}
recipients = ["support@example.com"]

{analysis}
[sender]
enabled = false
from_address = "support@example.com"
from_name = "Example Cloud Support"
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "demo",
        help="run everything on sample mail in a local work folder",
        description="Run everything on sample mail in a work folder with its own config "
        "and database. With --config FILE (before `demo`), the demo uses that file's [kb] "
        "and [nlp] settings and nothing else; without it, the shipped articles and model.",
    )
    p.add_argument("--workdir", default="demo-work", help="work folder (default: ./demo-work)")
    p.add_argument("--no-ui", action="store_true", help="print a summary instead of the review UI")
    p.set_defaults(func=cmd_demo, explicit_config_only=True)


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    source = config if args.config else None
    if source is not None:
        problems = missing_paths(source, args.config)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            return 1
    return run_demo(workdir=Path(args.workdir), open_ui=not args.no_ui, source=source)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_messages() -> list[tuple[str, bytes]]:
    folder = resources.files("gateway") / "samples"
    return sorted(
        (item.name, item.read_bytes()) for item in folder.iterdir() if item.name.endswith(".eml")
    )


def find_kb_dir() -> Path:
    """The shipped articles: the checkout's kb/, or the copy installed with the package."""
    return shipped_kb_dir()


def analysis_sections(source: Config | None) -> str:
    """The demo config's [kb] and [nlp]: the shipped ones, or those of `source`."""
    if source is None:
        return f"[kb]\ndir = {json.dumps(find_kb_dir().as_posix())}\n"
    paths = {("kb", "dir"), ("kb", "docs_dir"), ("nlp", "model_dir")}
    text = ""
    for name in ("kb", "nlp"):
        text += f"[{name}]\n"
        for item in dataclasses.fields(getattr(source, name)):
            value = getattr(getattr(source, name), item.name)
            if (name, item.name) in paths and value:
                value = source.resolve_path(value).as_posix()
            # JSON strings, numbers, booleans and lists of strings are valid TOML.
            text += f"{item.name} = {json.dumps(value)}\n"
        text += "\n"
    return text


def count_messages(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Message)).one())


def run_demo(*, workdir: Path, open_ui: bool = True, source: Config | None = None) -> int:
    from gateway.inbound.smtp import make_controller
    from gateway.runner import run_until_idle

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = workdir / "config.toml"
    config_path.write_text(DEMO_CONFIG.format(port=port, analysis=analysis_sections(source)))
    config = load_config(config_path)
    engine = open_engine(config)
    stored_before = count_messages(engine)

    controller = make_controller(config, engine)
    controller.start()
    sent = 0
    try:
        with smtplib.SMTP(config.smtp.host, port, timeout=30) as client:
            for name, raw in sample_messages():
                client.sendmail("customer@customers.example", ["support@example.com"], raw)
                sent += 1
                print(f"  sent {name} over SMTP to 127.0.0.1:{port}")
    finally:
        controller.stop()
    # The front door answers 250 for mail it already holds too; the database tells.
    new = count_messages(engine) - stored_before
    print(
        f"demo: {sent} sample mail(s) accepted by the SMTP front door: "
        f"{new} new ({sent - new} already stored); analysing…"
    )

    run_until_idle(build_runners(config, engine))
    status = collect_status(engine)
    print(
        "demo: messages by state: "
        + ", ".join(f"{k} {v}" for k, v in sorted(status["messages"].items()))
    )
    drafted = status["messages"].get(MessageState.DRAFTED, 0)
    print(f"demo: {drafted} drafted, waiting for review in {workdir}")
    print(f"demo: database {config.database_url}; config {config_path}")
    if not open_ui:
        return 0
    if not sys.stdout.isatty():
        print("demo: not a terminal, so the review UI was not opened")
        print(f"demo: open it with: supportgate --config {config_path} review")
        return 0
    from gateway.cli.review import open_review

    # In the demo you are the whole team, ops role included.
    return open_review(config, ops=[config.actor])
