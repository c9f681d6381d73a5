"""Load and validate config.toml into the frozen dataclasses of `sections.py`.

Validation is strict on purpose: an unknown key is almost always a typo that would
otherwise silently fall back to a default (an open relay, a mailbox never polled), so
it is an error that names the key, the section and the keys that are allowed. Secrets
never live in the file: keys ending in `_env` name environment variables, read here by
`secret` and listed, when unset, by `missing_secrets`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from gateway.config.desk import LIST_SECTIONS, DeskConfig, desk_problems
from gateway.config.metrics import metric_problems
from gateway.config.paths import with_default_kb
from gateway.config.sections import (
    Config,
    DraftConfig,
    ImapConfig,
    KbConfig,
    LoggingConfig,
    MetricConfig,
    MetricsEndpointConfig,
    NlpConfig,
    ParseConfig,
    ReviewConfig,
    RunnerConfig,
    ScreenConfig,
    SenderConfig,
    SmtpConfig,
    StorageConfig,
)

DEFAULT_CONFIG_NAME = "config.toml"


class ConfigError(ValueError):
    """A config problem, worded for the operator who has to fix it."""


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
    "metrics_endpoint": MetricsEndpointConfig,
    "desk": DeskConfig,
}
_LISTS = LIST_SECTIONS

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
    ("smtp", "auth_max_failures"): (1, None),
    ("smtp", "max_connections"): (1, None),
    ("smtp", "max_connections_per_ip"): (1, None),
    ("smtp", "max_bytes_in_flight"): (1024, None),
    ("smtp", "max_bytes_in_flight_per_ip"): (0, None),
    ("smtp", "bulk_data_rate"): (0, None),
    ("imap", "port"): (1, 65535),
    ("imap", "batch_size"): (1, None),
    ("imap", "poll_interval"): (0.05, None),
    ("imap", "idle_renew_seconds"): (1, 29 * 60),
    ("runner", "batch_size"): (1, None),
    ("runner", "poll_interval"): (0.01, None),
    ("runner", "stale_after_seconds"): (10, None),
    ("runner", "max_attempts"): (1, None),
    ("runner", "workers"): (1, 256),
    ("runner", "nice"): (0, 19),
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
    ("review", "bulk_window_minutes"): (1, 7 * 24 * 60),
    ("review", "lease_minutes"): (1, None),
    ("review", "refresh_seconds"): (0, None),
    ("review", "page_size"): (1, 10_000),
    ("draft", "timeout_seconds"): (0.1, 600),
    ("draft", "failures_to_open"): (1, None),
    ("draft", "open_seconds"): (0, None),
    # 0 = any free port (printed at start).
    ("metrics_endpoint", "port"): (0, 65535),
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
    allowed = set(_SECTIONS) | set(_LISTS) | {"imap", "metrics"}
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
    raw_metrics = data.get("metrics", [])
    if not isinstance(raw_metrics, list):
        raise ConfigError("[metrics] must be written as [[metrics]] (a list of queries)")
    kwargs["metrics"] = [
        _build(MetricConfig, item, f"metrics #{i + 1}") for i, item in enumerate(raw_metrics)
    ]
    if problems := metric_problems(kwargs["metrics"]):
        raise ConfigError("; ".join(problems))
    for name, (cls, target) in _LISTS.items():
        raw = data.get(name, [])
        if not isinstance(raw, list):
            raise ConfigError(f"[{name}] must be written as [[{name}]] (a list of tables)")
        kwargs[target] = [_build(cls, item, f"{name} #{i + 1}") for i, item in enumerate(raw)]
    desk = [kwargs.get("desk", DeskConfig()), kwargs["teams"], kwargs["routing"], kwargs["sla"]]
    if problems := desk_problems(*desk):
        raise ConfigError("; ".join(problems))
    config = with_default_kb(Config(**kwargs, base_dir=base_dir))
    smtp = config.smtp
    if bool(smtp.tls_cert) != bool(smtp.tls_key):
        raise ConfigError("[smtp] tls_cert and tls_key must be set together")
    if smtp.require_starttls and not smtp.tls_cert:
        raise ConfigError("[smtp] require_starttls needs tls_cert and tls_key")
    if smtp.max_bytes_in_flight < smtp.max_message_size:
        raise ConfigError("[smtp] max_bytes_in_flight must be at least max_message_size")
    if 0 < smtp.max_bytes_in_flight_per_ip < smtp.max_message_size:
        raise ConfigError("[smtp] max_bytes_in_flight_per_ip must be at least max_message_size")
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
        return with_default_kb(Config(base_dir=Path.cwd()))
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
