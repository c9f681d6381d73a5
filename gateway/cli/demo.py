"""`supportgate demo`: the embedded default, end to end, on the project's sample mail.

It makes a work folder with its own config and SQLite database, starts the real SMTP
front door on 127.0.0.1 (a free port), sends the sample support mails through it with
smtplib exactly as an MTA would, runs the analysis until idle, and opens the review UI.
Nothing is sent to customers: the sender stays disabled in the demo config.
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.cli.runtime import build_runners, open_engine
from gateway.cli.status import collect_status
from gateway.config import Config, load_config

DEMO_CONFIG = """\
# Written by `supportgate demo`. Edit freely; see the project's config.toml for every key.
[storage]
url = "sqlite:///supportgate.sqlite3"

[smtp]
host = "127.0.0.1"
port = {port}
recipients = ["support@example.com"]

[kb]
dir = "{kb_dir}"

[sender]
enabled = false
from_address = "support@example.com"
from_name = "Example Cloud Support"
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("demo", help="run everything on sample mail in a local work folder")
    p.add_argument("--workdir", default="demo-work", help="work folder (default: ./demo-work)")
    p.add_argument("--no-ui", action="store_true", help="print a summary instead of the review UI")
    p.set_defaults(func=cmd_demo, no_config=True)


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    return run_demo(workdir=Path(args.workdir), open_ui=not args.no_ui)


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
    """The shipped kb/ beside the package (source checkout or installed data)."""
    here = Path(__file__).resolve().parents[2] / "kb"
    return here


def run_demo(*, workdir: Path, open_ui: bool = True) -> int:
    from gateway.inbound.smtp import make_controller
    from gateway.runner import run_until_idle

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = workdir / "config.toml"
    config_path.write_text(DEMO_CONFIG.format(port=port, kb_dir=find_kb_dir().as_posix()))
    config = load_config(config_path)
    engine = open_engine(config)

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
    print(f"demo: {sent} sample mail(s) accepted by the SMTP front door; analysing…")

    run_until_idle(build_runners(config, engine))
    status = collect_status(engine)
    print(
        "demo: messages by state: "
        + ", ".join(f"{k} {v}" for k, v in sorted(status["messages"].items()))
    )
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
