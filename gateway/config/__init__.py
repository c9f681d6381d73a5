"""config.toml: its sections (`sections.py`) and strict loading (`load.py`).

Everything is imported from `gateway.config`; it imports nothing else of `gateway`.
"""

from gateway.config.load import (
    DEFAULT_CONFIG_NAME,
    ConfigError,
    find_config_path,
    load_config,
    missing_secrets,
    parse_config,
    secret,
)
from gateway.config.metrics import parse_duration
from gateway.config.paths import DEFAULT_KB_DIR, shipped_kb_dir
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

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_KB_DIR",
    "Config",
    "ConfigError",
    "DraftConfig",
    "ImapConfig",
    "KbConfig",
    "LoggingConfig",
    "MetricConfig",
    "MetricsEndpointConfig",
    "NlpConfig",
    "ParseConfig",
    "ReviewConfig",
    "RunnerConfig",
    "ScreenConfig",
    "SenderConfig",
    "SmtpConfig",
    "StorageConfig",
    "find_config_path",
    "load_config",
    "missing_secrets",
    "parse_config",
    "parse_duration",
    "secret",
    "shipped_kb_dir",
]
