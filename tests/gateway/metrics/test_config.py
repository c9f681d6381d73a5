"""`[[metrics]]` and `[metrics_endpoint]` in config.toml: defaults, and errors that say
exactly what to fix (the loader stays strict about unknown keys)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import Config, ConfigError, load_config, parse_duration

GOOD = """
[[metrics]]
name = "api-errors"
url = "http://127.0.0.1:9090"
query = 'sum by (code) (rate(http_requests_total{code=~"5.."}[5m]))'

[[metrics]]
name = "latency"
url = "https://prometheus.example.com/prom/"
query = "histogram_quantile(0.99, rate(request_seconds_bucket[5m]))"
step = "1m"
lookback = "2d"
"""


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


def metric(**keys: str) -> str:
    values = {"name": "m", "url": "http://127.0.0.1:9090", "query": "up", **keys}
    return "[[metrics]]\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())


def test_metrics_tables_load_with_their_defaults(tmp_path: Path) -> None:
    first, second = load(tmp_path, GOOD).metrics
    assert (first.name, first.step, first.lookback) == ("api-errors", "5m", "7d")
    assert first.query.startswith("sum by (code)")
    assert (second.url, second.step, second.lookback) == (
        "https://prometheus.example.com/prom/",
        "1m",
        "2d",
    )


def test_no_metrics_and_the_endpoint_on_loopback_by_default(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.metrics == []
    endpoint = config.metrics_endpoint
    assert (endpoint.enabled, endpoint.host, endpoint.port) == (True, "127.0.0.1", 9464)


def test_unknown_key_is_named_with_the_allowed_ones(tmp_path: Path) -> None:
    message = error_of(tmp_path, metric(interval="5m"))
    assert "unknown key in [metrics #1]: interval" in message
    assert "allowed: lookback, name, query, step, url" in message
    message = error_of(tmp_path, "[metrics_endpoint]\nlisten = '127.0.0.1:9464'\n")
    assert "unknown key in [metrics_endpoint]: listen" in message


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"url": "ftp://127.0.0.1:9090"}, "url must be an http:// or https:// address"),
        ({"url": "127.0.0.1:9090"}, "url must be an http:// or https:// address"),
        ({"url": "http://"}, "url must be an http:// or https:// address"),
        ({"url": "http://h:9090/api/v1/query?x=1"}, "without ?query"),
        ({"query": "   "}, "[[metrics]] m: query is required"),
        ({"name": ""}, "[[metrics]] #1: name is required"),
        ({"step": "5 minutes"}, "step: '5 minutes' is not a duration"),
        ({"step": "5"}, "step: '5' is not a duration"),
        ({"lookback": "0d"}, "lookback: '0d' must be longer than zero"),
        ({"lookback": "7days"}, "lookback: '7days' is not a duration"),
        ({"step": "1h", "lookback": "30m"}, "lookback must be longer than step"),
        ({"step": "7m"}, "step must divide an hour (1m, 5m, 10m, 15m, 30m, 1h)"),
        ({"step": "2h"}, "step must divide an hour"),
        ({"step": "10s", "lookback": "7d"}, "up to 69,120 points a series; Prometheus answers"),
    ],
)
def test_bad_values_are_explained(tmp_path: Path, keys: dict[str, str], expected: str) -> None:
    assert expected in error_of(tmp_path, metric(**keys))


def test_wrong_types_and_shapes_are_errors(tmp_path: Path) -> None:
    assert "[metrics #1] query: expected a string, got 3" in error_of(
        tmp_path, "[[metrics]]\nname = 'm'\nurl = 'http://h'\nquery = 3\n"
    )
    assert "[metrics] must be written as [[metrics]]" in error_of(
        tmp_path, "[metrics]\nname = 'm'\n"
    )
    assert "names must be unique: m" in error_of(tmp_path, metric() + metric())
    assert "[metrics_endpoint] port: must be between 0 and 65535" in error_of(
        tmp_path, "[metrics_endpoint]\nport = 70000\n"
    )


def test_durations_read_like_prometheus() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    for bad in ("", "m", "1.5h", "-5m", "5m1"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
