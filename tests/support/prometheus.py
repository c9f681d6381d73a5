"""A real Prometheus on 127.0.0.1 that already holds a week of history when it starts.

History is written as OpenMetrics text (`openmetrics`) and turned into TSDB blocks by
`promtool tsdb create-blocks-from openmetrics` *before* the server starts, so the very
first `query_range` sees it; nothing is pushed or scraped to build the past. The server
gets a private data directory and config in a temporary directory, a free port, and
stops (and removes that directory) at `stop()`, at the end of a `with` block, or at
interpreter exit, whichever comes first.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from urllib.parse import urlencode

from tests.support.net import free_port


def _binary(name: str) -> str | None:
    return shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)


PROMETHEUS = _binary("prometheus")
PROMTOOL = _binary("promtool")

Sample = tuple[str, dict[str, str], datetime, float]

CONFIG = """\
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
scrape_configs:
{jobs}
"""

JOB = """\
  - job_name: {name}
    scrape_interval: {interval}
    static_configs:
      - targets: ["{target}"]
"""


class PrometheusMissing(RuntimeError):
    """No prometheus/promtool binaries here (Debian package `prometheus`)."""


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def openmetrics(samples: Iterable[Sample]) -> str:
    """Gauge samples `(name, labels, time, value)` as an OpenMetrics text exposition.

    Families must be contiguous and each series in time order, so samples are sorted.
    """
    by_family: dict[str, list[tuple[dict[str, str], datetime, float]]] = {}
    for name, labels, at, value in samples:
        by_family.setdefault(name, []).append((labels, at, value))
    lines = []
    for name in sorted(by_family):
        lines.append(f"# TYPE {name} gauge")
        rows = sorted(by_family[name], key=lambda r: (sorted(r[0].items()), r[1]))
        for labels, at, value in rows:
            inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            series = f"{name}{{{inner}}}" if inner else name
            lines.append(f"{series} {_number(value)} {at.timestamp():.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@dataclass
class Prometheus:
    dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_text(self) -> str:
        path = self.dir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        atexit.unregister(self.stop)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _backfill(history: str, directory: Path, data: Path) -> None:
    assert PROMTOOL is not None
    source = directory / "history.om"
    source.write_text(history)
    # One block per week instead of one per two hours: a faster start.
    week = "--max-block-duration=168h"
    done = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", week, str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool could not load the history:\n{done.stderr}")


def _wait_ready(server: Prometheus, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise RuntimeError(f"prometheus exited early:\n{server.log_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"prometheus was not ready within the deadline:\n{server.log_text()}")


def start_prometheus(
    *,
    history: str = "",
    scrape: Sequence[str] = (),
    scrape_interval: str = "1s",
    timeout: float = 30.0,
) -> Prometheus:
    """Start Prometheus holding `history` (OpenMetrics text) and scraping each
    `host:port` in `scrape` every `scrape_interval` (jobs `target0`, `target1`, ...)."""
    if PROMETHEUS is None or PROMTOOL is None:
        raise PrometheusMissing(
            "PROMETHEUS BINARY NOT FOUND: metrics tests need a real Prometheus "
            "(apt-get install prometheus); they are NOT run"
        )
    base = Path(tempfile.mkdtemp(prefix="sg-prometheus-"))
    server = Prometheus(dir=base, port=free_port())
    try:
        data = base / "data"
        data.mkdir()
        if history:
            _backfill(history, base, data)
        jobs = "".join(
            JOB.format(name=f"target{i}", interval=scrape_interval, target=target)
            for i, target in enumerate(scrape)
        )
        config = base / "prometheus.yml"
        config.write_text(CONFIG.format(interval=scrape_interval, jobs=jobs or "  []"))
        with (base / "prometheus.log").open("wb") as log:
            server.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    # Backfilled history must not age out during a test.
                    "--storage.tsdb.retention.time=60d",
                    f"--web.listen-address={server.host}:{server.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        atexit.register(server.stop)
        _wait_ready(server, time.monotonic() + timeout)
    except BaseException:
        server.stop()
        raise
    return server


def instant(server: Prometheus, query: str) -> bytes:
    """The raw JSON answer of an instant query (for polling what was scraped)."""
    url = f"{server.url}/api/v1/query?{urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return bytes(exc.read())


# ---------------------------------------------------------------- test series

WEDNESDAY = 2
STEP = timedelta(minutes=5)


def anchor_now() -> datetime:
    """The latest Wednesday 14:00 UTC that is at least eight days ago."""
    t = datetime.fromtimestamp(time.time(), UTC) - timedelta(days=8)
    t = t.replace(hour=14, minute=0, second=0, microsecond=0)
    return t - timedelta(days=(t.weekday() - WEDNESDAY) % 7)


def latency(
    name: str,
    labels: dict[str, str],
    now: datetime,
    *,
    seed: int,
    spike_at: datetime | None = None,
    spike: timedelta = timedelta(minutes=30),
) -> list[Sample]:
    """Eight days of 5-minute samples up to `now`: 120 ms at night, 180 ms at 14:00,
    Gaussian noise of 4 ms, and 100 ms more from `spike_at` for `spike`."""
    rnd = random.Random(seed)
    samples: list[Sample] = []
    for i in range(8 * 288, -1, -1):
        t = now - i * STEP
        hour = t.hour + t.minute / 60
        value = 120 + 30 * (1 - math.cos((hour - 2) / 24 * 2 * math.pi)) + rnd.gauss(0, 4)
        if spike_at is not None and spike_at <= t < spike_at + spike:
            value += 100
        samples.append((name, labels, t, value))
    return samples
