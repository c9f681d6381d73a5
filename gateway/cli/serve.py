"""`supportgate serve` and `supportgate process`: the long-running side of the gateway.

`serve` is a small supervisor. Its own process runs the SMTP front door, one poller per
`[[imap]]` and the /metrics endpoint, and nothing heavier: analysis runs in `[runner]
workers` child processes and the sender in one more (gateway.supervise), each a
`supportgate process --role … --supervised` at lower priority (`[runner] nice`), so
accepting mail never waits for analysis; on SQLite they also let the front door's
commits go first (gateway.supervise.write_gate). `--no-runners` starts no children. On
SIGTERM/SIGINT it stops the front door, then the children, which hand back every claim
they hold.

`process` runs runners in this process: all of them (the default, e.g. from cron with
`--until-idle`), or one role, as `serve` starts it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from sqlalchemy.engine import Engine

from gateway.cli.runtime import build_runners, open_engine, worker_prefix
from gateway.config import Config, find_config_path
from gateway.runner import RecoveryRunner, Runner, run_forever, run_until_idle
from gateway.supervise.supervisor import Supervisor, WorkerSpec
from gateway.supervise.write_gate import go_first
from storage.queue import release_claims

log = logging.getLogger("supportgate")

ROLES = ("all", "analysis", "sender")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("serve", help="run the SMTP front door, IMAP pollers and runners")
    p.add_argument("--no-runners", action="store_true", help="accept mail only; do not analyse")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("process", help="run the runners (analysis, sender)")
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is claimable")
    p.add_argument("--role", choices=ROLES, default="all", help="which runners (default: all)")
    # Set by `serve` for its children: lower priority, and stop when serve is gone.
    p.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_process)


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config, recover_claims=True)
    go_first(engine)  # SQLite: the front door's commits never queue behind analysis
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    controller = None
    if config.smtp.enabled:
        from gateway.inbound.smtp import make_controller

        controller = make_controller(config, engine)
        controller.start()
        log.info("SMTP front door on %s:%s", config.smtp.host, config.smtp.port)
        print(f"supportgate: SMTP listening on {config.smtp.host}:{config.smtp.port}", flush=True)
    threads: list[threading.Thread] = []
    if config.imap:
        from gateway.inbound.imap.poller import run_pollers

        threads.extend(run_pollers(config, engine, stop))
    supervisor = None
    if not args.no_runners:
        supervisor = Supervisor(
            engine, worker_specs(args, config), max_attempts=config.runner.max_attempts
        )
        supervisor.start()
        threads.append(_recovery_thread(config, engine, stop))
    endpoint = None
    if config.metrics_endpoint.enabled:
        from gateway.metrics.exporter import start_endpoint

        endpoint = start_endpoint(config.metrics_endpoint, engine)
        if endpoint is not None:
            print(f"supportgate: metrics on {endpoint.url}", flush=True)
    try:
        while not stop.is_set():
            if supervisor is not None:
                supervisor.tick()
            stop.wait(0.5)
    finally:
        if controller is not None:
            controller.stop()
        if endpoint is not None:
            endpoint.stop()
        for thread in threads:
            thread.join(timeout=10)
        if supervisor is not None:
            supervisor.stop()
        engine.dispose()
    print("supportgate: stopped", flush=True)
    return 0


def worker_specs(args: argparse.Namespace, config: Config) -> list[WorkerSpec]:
    """`[runner] workers` analysis processes, and the sender when it is enabled."""
    command = [sys.executable, "-m", "gateway.cli"]
    path = find_config_path(args.config)
    if path is not None:
        command += ["--config", str(path.resolve())]
    if args.verbose:
        command.append("-v")

    def spec(name: str, role: str) -> WorkerSpec:
        return WorkerSpec(name, role, (*command, "process", "--role", role, "--supervised"))

    specs = [spec(f"analysis-{i}", "analysis") for i in range(1, config.runner.workers + 1)]
    if config.sender.enabled:
        specs.append(spec("sender", "sender"))
    return specs


def _recovery_thread(config: Config, engine: Engine, stop: threading.Event) -> threading.Thread:
    """Stale claims of processes elsewhere (another host, a previous run) and the WAL
    checkpoint: cheap, periodic, and best done once per database, by the supervisor."""
    recovery = RecoveryRunner(
        engine,
        stale_after_seconds=config.runner.stale_after_seconds,
        max_attempts=config.runner.max_attempts,
        interval=max(config.runner.stale_after_seconds / 2, 1.0),
    )
    thread = threading.Thread(
        target=run_forever, args=([recovery], stop), name="recovery", daemon=True
    )
    thread.start()
    return thread


def runners_for(role: str, config: Config, engine: Engine) -> list[Runner]:
    runners = build_runners(config, engine)
    if role == "all":
        return runners
    chosen = [r for r in runners if r.name == role]
    if not chosen:
        log.error("no %s runner to run (is it enabled in the config?)", role)
    return chosen


def cmd_process(args: argparse.Namespace, config: Config) -> int:
    if args.supervised:
        from gateway.supervise.child import lower_priority, tag_logs

        tag_logs(args.role)
        lower_priority(config.runner.nice)
    # Under serve, the supervisor recovered stale claims before starting any child.
    engine = open_engine(
        config, recover_claims=not args.supervised, redoable=args.role == "analysis"
    )
    if args.supervised:
        from gateway.supervise.write_gate import give_way

        give_way(engine)
    runners = runners_for(args.role, config, engine)
    if not runners:
        return 2
    if args.until_idle:
        handled = run_until_idle(runners)
        print(f"processed {handled} item(s); idle")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.supervised:
        from gateway.supervise.child import stop_with_parent

        stop_with_parent(stop)
    try:
        run_forever(runners, stop, poll_interval=config.runner.poll_interval)
    finally:
        # What this process still holds goes straight back to the queue rather than
        # waiting `stale_after_seconds` for recovery.
        released = release_claims(engine, worker_prefix=worker_prefix())
        if released:
            log.info("handed back %d claimed message(s)", released)
        engine.dispose()
    return 0
