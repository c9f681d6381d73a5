"""`supportgate` command line: the composition root that wires config, storage and runners.

Command names and flags are a public contract (operators script them); each handler is
`handler(args, config) -> exit code`, and each command group lives in its own module
with a `register(sub)` that adds its sub-commands. Groups with heavy imports (spaCy,
Textual) import them only when one of their commands runs. Bare `supportgate` prints the
commands; output cut short by a closed pipe (`supportgate export | head`) ends quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
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
    "gateway.cli.incidents",
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiosmtpd logs every SMTP command at INFO; that is a flood, not an audit trail.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        # `demo` makes its own config; it reads only a file named with --config.
        if getattr(args, "explicit_config_only", False) and not args.config:
            config = Config()
        else:
            config = load_config(find_config_path(args.config))
            logging.getLogger().setLevel(logging.DEBUG if args.verbose else config.logging.level)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    try:
        code = int(args.func(args, config))
        sys.stdout.flush()
        return code
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader has all it wanted; point stdout at /dev/null so that the final
        # flush at exit does not complain either.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
