"""The shape of config.toml: one frozen dataclass per section, with every default.

A key that is not a field here is not a key of the file: loading (`load.py`) rejects it
by name, and checks each value against the field's type. Kept apart from the loader so
the settings and their defaults read as a plain list.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.desk import DeskConfig, RoutingRule, SlaRule, TeamConfig


@dataclass(frozen=True)
class StorageConfig:
    url: str = "sqlite:///var/supportgate.sqlite3"


@dataclass(frozen=True)
class SmtpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    # Addresses we accept mail for; "@example.com" accepts a whole domain.
    recipients: list[str] = field(default_factory=lambda: ["support@example.com"])
    max_message_size: int = 25 * 1024 * 1024
    tls_cert: str = ""
    tls_key: str = ""
    require_starttls: bool = False
    auth_required: bool = False
    auth_username: str = ""
    auth_password_env: str = ""
    # Failed AUTHs per client address before guesses slow to one a second.
    auth_max_failures: int = 5
    hostname: str = "supportgate.local"
    # Open connections, in total and per client address (421 beyond).
    max_connections: int = 100
    max_connections_per_ip: int = 10
    # Bytes of DATA held in memory across all connections (452 beyond).
    max_bytes_in_flight: int = 256 * 1024 * 1024
    # Of those, what one client address may hold; 0 = a tenth, at least max_message_size.
    max_bytes_in_flight_per_ip: int = 0
    # Bytes a second read of messages past their first MiB, all connections together.
    bulk_data_rate: int = 32 * 1024 * 1024

    @property
    def bytes_per_ip(self) -> int:
        """The per-address DATA share in effect."""
        share = self.max_bytes_in_flight_per_ip or max(
            self.max_bytes_in_flight // 10, self.max_message_size
        )
        return min(share, self.max_bytes_in_flight)


@dataclass(frozen=True)
class ImapConfig:
    name: str = ""
    host: str = "127.0.0.1"
    port: int = 993
    tls: str = "implicit"  # implicit | starttls | none
    # PEM file of a private CA to trust (company Dovecot); "" = the system's CAs.
    tls_ca_file: str = ""
    username: str = ""
    password_env: str = ""
    oauth2_token_env: str = ""
    oauth2_token_command: str = ""
    folder: str = "INBOX"
    after_store: str = "seen"  # seen | keyword | move | none
    keyword: str = "$SupportgateStored"
    move_to: str = ""
    idle: bool = True
    idle_renew_seconds: int = 25 * 60
    poll_interval: float = 60.0
    batch_size: int = 50
    backfill_since: str = ""
    sent_folder: str = ""


def default_workers() -> int:
    """One analysis process per core but one, which is left to the front door.

    Counts the cores this process may run on (a container's or `taskset`'s), not all
    of the machine's.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(cores - 1, 1)


@dataclass(frozen=True)
class RunnerConfig:
    batch_size: int = 20
    poll_interval: float = 1.0
    stale_after_seconds: int = 600
    max_attempts: int = 3
    # Analysis processes that `serve` starts, and how much lower their scheduling
    # priority is than the front door's (os.nice; 0 = the same, 19 = the lowest).
    workers: int = field(default_factory=default_workers)
    nice: int = 10


@dataclass(frozen=True)
class ParseConfig:
    max_attachment_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class NlpConfig:
    model_dir: str = ""
    abstain_threshold: float = 0.5
    products: list[str] = field(default_factory=list)
    account_id_patterns: list[str] = field(default_factory=list)
    max_log_bytes: int = 20 * 1024 * 1024
    max_compression_ratio: int = 100


@dataclass(frozen=True)
class KbConfig:
    # Loading resolves the default to kb/ beside the file, else the shipped articles.
    dir: str = "kb"
    max_suggestions: int = 3
    # A team's own docs: plain Markdown (no front matter), chunked into passages.
    docs_dir: str = ""


@dataclass(frozen=True)
class DraftConfig:
    backend: str = "template"  # template | openai
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = ""
    api_key_env: str = ""
    timeout_seconds: float = 20.0
    # Consecutive failures that open the circuit, and how long it stays open.
    failures_to_open: int = 3
    open_seconds: float = 300.0


@dataclass(frozen=True)
class ScreenConfig:
    max_per_sender_per_hour: int = 20
    max_per_thread_per_hour: int = 10
    extra_own_addresses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SenderConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 25
    tls: str = "none"  # none | implicit | starttls
    username: str = ""
    password_env: str = ""
    from_address: str = "support@example.com"
    from_name: str = "Support"
    signature: str = "-- \n{rep_name}\n{from_name}"
    max_attempts: int = 8
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 30.0
    max_per_minute: int = 60


@dataclass(frozen=True)
class ReviewConfig:
    actor: str = ""
    ops: list[str] = field(default_factory=list)
    bulk_ops_threshold: int = 20
    # The threshold counts a rep's bulk releases over this many minutes, not per batch.
    bulk_window_minutes: int = 60
    lease_minutes: int = 15
    refresh_seconds: float = 2.0
    page_size: int = 200


@dataclass(frozen=True)
class MetricConfig:
    """One `[[metrics]]` table: a PromQL query whose series are checked for spikes."""

    name: str = ""
    url: str = ""  # the Prometheus server, e.g. http://127.0.0.1:9090
    query: str = ""
    # Prometheus durations ("30s", "5m", "1h30m", "7d"): sample spacing and history.
    step: str = "5m"
    lookback: str = "7d"


@dataclass(frozen=True)
class MetricsEndpointConfig:
    """`serve`'s own /metrics for Prometheus to scrape; a busy port only logs a warning."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    imap: list[ImapConfig] = field(default_factory=list)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    parse: ParseConfig = field(default_factory=ParseConfig)
    nlp: NlpConfig = field(default_factory=NlpConfig)
    kb: KbConfig = field(default_factory=KbConfig)
    draft: DraftConfig = field(default_factory=DraftConfig)
    screen: ScreenConfig = field(default_factory=ScreenConfig)
    sender: SenderConfig = field(default_factory=SenderConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: list[MetricConfig] = field(default_factory=list)
    metrics_endpoint: MetricsEndpointConfig = field(default_factory=MetricsEndpointConfig)
    desk: DeskConfig = field(default_factory=DeskConfig)
    teams: list[TeamConfig] = field(default_factory=list)
    routing: list[RoutingRule] = field(default_factory=list)
    sla: list[SlaRule] = field(default_factory=list)
    # Where relative paths in the file are resolved from.
    base_dir: Path = field(default_factory=Path.cwd)

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def database_url(self) -> str:
        url = self.storage.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url[len("sqlite:///") :]
            if rel and rel != ":memory:":
                return "sqlite:///" + str(self.resolve_path(rel))
        return url

    @property
    def actor(self) -> str:
        return self.review.actor or os.environ.get("USER") or getpass.getuser()

    def own_addresses(self) -> set[str]:
        addrs = {a.lower() for a in self.smtp.recipients if not a.startswith("@")}
        addrs.add(self.sender.from_address.lower())
        addrs.update(a.lower() for a in self.screen.extra_own_addresses)
        return addrs
