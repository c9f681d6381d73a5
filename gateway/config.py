"""Load and validate config.toml into frozen dataclasses.

Validation is strict on purpose: an unknown key is almost always a typo that would
otherwise silently fall back to a default (an open relay, a mailbox never polled), so
it is an error that names the key, the section and the keys that are allowed. Secrets
never live in the file: keys ending in `_env` name environment variables.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_NAME = "config.toml"


class ConfigError(ValueError):
    """A config problem, worded for the operator who has to fix it."""


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
    hostname: str = "supportgate.local"


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


@dataclass(frozen=True)
class RunnerConfig:
    batch_size: int = 20
    poll_interval: float = 1.0
    stale_after_seconds: int = 600
    max_attempts: int = 3


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
    lease_minutes: int = 15
    refresh_seconds: float = 2.0
    page_size: int = 200


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


_SECTIONS: dict[str, type] = {
    "storage": StorageConfig,
    "smtp": SmtpConfig,
    "runner": RunnerConfig,
    "parse": ParseConfig,
    "nlp": NlpConfig,
    "kb": KbConfig,
    "draft": DraftConfig,
    "screen": ScreenConfig,
    "sender": SenderConfig,
    "review": ReviewConfig,
    "logging": LoggingConfig,
}

_CHOICES: dict[tuple[str, str], set[str]] = {
    ("imap", "tls"): {"implicit", "starttls", "none"},
    ("imap", "after_store"): {"seen", "keyword", "move", "none"},
    ("sender", "tls"): {"implicit", "starttls", "none"},
    ("logging", "level"): {"DEBUG", "INFO", "WARNING", "ERROR"},
    ("draft", "backend"): {"template", "openai"},
}


# Numbers that would silently stop or misdirect work (a batch of 0, a port of 70000).
_RANGES: dict[tuple[str, str], tuple[float, float | None]] = {
    ("smtp", "port"): (1, 65535),
    ("smtp", "max_message_size"): (1024, None),
    ("imap", "port"): (1, 65535),
    ("imap", "batch_size"): (1, None),
    ("imap", "poll_interval"): (0.05, None),
    ("imap", "idle_renew_seconds"): (1, 29 * 60),
    ("runner", "batch_size"): (1, None),
    ("runner", "poll_interval"): (0.01, None),
    ("runner", "stale_after_seconds"): (10, None),
    ("runner", "max_attempts"): (1, None),
    ("parse", "max_attachment_bytes"): (1024, None),
    ("nlp", "max_log_bytes"): (1024, None),
    ("nlp", "max_compression_ratio"): (1, None),
    ("kb", "max_suggestions"): (0, None),
    ("screen", "max_per_sender_per_hour"): (1, None),
    ("screen", "max_per_thread_per_hour"): (1, None),
    ("sender", "port"): (1, 65535),
    ("sender", "max_attempts"): (1, None),
    ("sender", "backoff_base_seconds"): (0, None),
    ("sender", "backoff_max_seconds"): (0, None),
    ("sender", "timeout_seconds"): (0.1, None),
    ("sender", "max_per_minute"): (1, None),
    ("review", "bulk_ops_threshold"): (0, None),
    ("review", "lease_minutes"): (1, None),
    ("review", "refresh_seconds"): (0, None),
    ("review", "page_size"): (1, 10_000),
    ("draft", "timeout_seconds"): (0.1, 600),
    ("draft", "failures_to_open"): (1, None),
    ("draft", "open_seconds"): (0, None),
}


def _check_range(section: str, key: str, value: Any, where: str) -> None:
    bounds = _RANGES.get((section.split(" ")[0], key))
    if bounds is None:
        return
    low, high = bounds
    if value < low or (high is not None and value > high):
        wanted = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise ConfigError(f"{where}: must be {wanted}, got {value!r}")


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"{where}: unsupported type")  # pragma: no cover
    raise ConfigError(f"{where}: unsupported type {hint!r}")  # pragma: no cover


def _build(cls: type, data: Any, section: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{section}] must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} in [{section}]: "
            f"{', '.join(unknown)} (allowed: {', '.join(sorted(known))})"
        )
    values = {}
    for key, value in data.items():
        where = f"[{section}] {key}"
        values[key] = _check_type(value, hints[key], where)
        _check_range(section, key, values[key], where)
        choices = _CHOICES.get((section.split(" ")[0], key))
        if choices and values[key] not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(sorted(choices))}")
    return cls(**values)


def parse_config(data: dict[str, Any], *, base_dir: Path) -> Config:
    """Build a Config from TOML data, raising ConfigError that names the problem."""
    allowed = set(_SECTIONS) | {"imap"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown section{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    kwargs: dict[str, Any] = {
        name: _build(cls, data[name], name) for name, cls in _SECTIONS.items() if name in data
    }
    raw_imap = data.get("imap", [])
    if isinstance(raw_imap, dict):
        raise ConfigError("[imap] must be written as [[imap]] (a list of mailboxes)")
    mailboxes = [_build(ImapConfig, item, f"imap #{i + 1}") for i, item in enumerate(raw_imap)]
    names = [m.name for m in mailboxes]
    for i, mb in enumerate(mailboxes):
        if not mb.name:
            raise ConfigError(f"[[imap]] #{i + 1}: name is required")
        if not mb.username:
            raise ConfigError(f"[[imap]] {mb.name}: username is required")
        if not (mb.password_env or mb.oauth2_token_env or mb.oauth2_token_command):
            raise ConfigError(
                f"[[imap]] {mb.name}: set password_env, oauth2_token_env or oauth2_token_command"
            )
        if mb.after_store == "move" and not mb.move_to:
            raise ConfigError(f"[[imap]] {mb.name}: after_store = 'move' needs move_to")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"[[imap]] names must be unique: {', '.join(dupes)}")
    kwargs["imap"] = mailboxes
    config = Config(**kwargs, base_dir=base_dir)
    smtp = config.smtp
    if bool(smtp.tls_cert) != bool(smtp.tls_key):
        raise ConfigError("[smtp] tls_cert and tls_key must be set together")
    if smtp.require_starttls and not smtp.tls_cert:
        raise ConfigError("[smtp] require_starttls needs tls_cert and tls_key")
    if smtp.auth_required and not (smtp.auth_username and smtp.auth_password_env):
        raise ConfigError("[smtp] auth_required needs auth_username and auth_password_env")
    sender = config.sender
    if sender.username and not sender.password_env:
        raise ConfigError("[sender] username needs password_env (the relay password's variable)")
    if not 0.0 <= config.nlp.abstain_threshold <= 1.0:
        raise ConfigError("[nlp] abstain_threshold must be between 0 and 1")
    return config


def find_config_path(explicit: str | None) -> Path | None:
    """--config wins, then $SUPPORTGATE_CONFIG, then ./config.toml if it exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("SUPPORTGATE_CONFIG")
    if env:
        return Path(env)
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default if default.exists() else None


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config(base_dir=Path.cwd())
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    return parse_config(data, base_dir=path.resolve().parent)


def missing_secrets(config: Config) -> list[str]:
    """Environment variables the config names that are not set."""
    wanted: list[tuple[str, str]] = []
    if config.smtp.auth_required:
        wanted.append(("[smtp] auth_password_env", config.smtp.auth_password_env))
    if config.sender.enabled and config.sender.password_env:
        wanted.append(("[sender] password_env", config.sender.password_env))
    if config.draft.backend == "openai" and config.draft.api_key_env:
        wanted.append(("[draft] api_key_env", config.draft.api_key_env))
    for mb in config.imap:
        if mb.password_env:
            wanted.append((f"[[imap]] {mb.name} password_env", mb.password_env))
        if mb.oauth2_token_env:
            wanted.append((f"[[imap]] {mb.name} oauth2_token_env", mb.oauth2_token_env))
    return [
        f"{where}: environment variable {var} is not set"
        for where, var in wanted
        if not os.environ.get(var)
    ]


def secret(var: str) -> str:
    """Read a secret from the environment, with an error that names the variable."""
    value = os.environ.get(var)
    if not value:
        raise ConfigError(f"environment variable {var} is not set")
    return value
