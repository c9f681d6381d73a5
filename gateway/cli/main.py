"""`supportgate` command line: the composition root that wires config, storage and runners.

Command names and flags are a public contract (operators script them); each handler is
`handler(args, config) -> exit code`, and each command group lives in its own module
with a `register(sub)` that adds its sub-commands. Groups with heavy imports (spaCy,
Textual) import them only when one of their commands runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gateway.config import Config, ConfigError, find_config_path, load_config

COMMAND_MODULES = (
    "gateway.cli.serve",
    "gateway.cli.mail",
    "gateway.cli.status",
    "gateway.cli.demo",
    "gateway.cli.model",
    "gateway.cli.review",
    "gateway.cli.patterns",
)


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
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
