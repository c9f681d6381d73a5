"""`supportgate serve` and `supportgate process`: the long-running side of the gateway.

`serve` runs the SMTP front door, one poller per `[[imap]]`, the /metrics endpoint and
(unless `--no-runners`) the runners until SIGTERM/SIGINT, then hands back every claim it
still holds; `process` runs only the runners, once until idle or until stopped.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from gateway.cli.runtime import build_runners, open_engine, worker_prefix
from gateway.config import Config
from gateway.runner import run_forever, run_until_idle
from storage.queue import release_claims

log = logging.getLogger("supportgate")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("serve", help="run the SMTP front door, IMAP pollers and runners")
    p.add_argument("--no-runners", action="store_true", help="accept mail only; do not analyse")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("process", help="run the runners (analysis, sender)")
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is claimable")
    p.set_defaults(func=cmd_process)


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
        from gateway.inbound.smtp import make_controller

        controller = make_controller(config, engine)
        controller.start()
        log.info("SMTP front door on %s:%s", config.smtp.host, config.smtp.port)
        print(f"supportgate: SMTP listening on {config.smtp.host}:{config.smtp.port}", flush=True)
    threads: list[threading.Thread] = []
    if config.imap:
        from gateway.inbound.imap.poller import run_pollers

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
    endpoint = None
    if config.metrics_endpoint.enabled:
        from gateway.metrics.exporter import start_endpoint

        endpoint = start_endpoint(config.metrics_endpoint, engine)
        if endpoint is not None:
            print(f"supportgate: metrics on {endpoint.url}", flush=True)
    try:
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        if controller is not None:
            controller.stop()
        if endpoint is not None:
            endpoint.stop()
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
