"""Read a PromQL range query from a Prometheus server, as plain series or one error line.

The callers are reports (`patterns`, `incidents`) that show metrics beside tickets: a
Prometheus that is down, a typo in a query or a proxy answering HTML must become one
readable line in that report, never a traceback. So `query_range` returns a result
that holds either series or an error message, and catches every failure it can name.
Parsing the JSON answer is a pure function (`parse_matrix`) apart from the HTTP call.
"""

from __future__ import annotations

import http.client
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Point = tuple[datetime, float]
# A week at 5-minute steps is ~2,000 points per series; this bounds a runaway query.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Series:
    """One label set of a range query and its finite samples, oldest first."""

    labels: dict[str, str]
    points: list[Point]


@dataclass(frozen=True)
class RangeResult:
    series: list[Series] = field(default_factory=list)
    error: str | None = None


class AnswerError(ValueError):
    """The server answered, but not with a range vector we can read."""


def parse_matrix(body: bytes) -> list[Series]:
    """The series of a successful `/api/v1/query_range` answer; NaN and ±Inf are dropped."""
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise AnswerError("the answer is not JSON (is the url a Prometheus server?)") from exc
    if not isinstance(answer, dict):
        raise AnswerError("the answer is not a Prometheus API object")
    if answer.get("status") != "success":
        raise AnswerError(_error_text(answer) or f"status {answer.get('status')!r}")
    data = answer.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise AnswerError("the answer has no data.result list")
    if data.get("resultType") != "matrix":
        raise AnswerError(f"expected a range vector (matrix), got {data.get('resultType')!r}")
    series = []
    try:
        for item in data["result"]:
            labels = {str(k): str(v) for k, v in item["metric"].items()}
            points = []
            for stamp, raw in item["values"]:
                value = float(raw)
                if math.isfinite(value):
                    points.append((datetime.fromtimestamp(float(stamp), UTC), value))
            series.append(Series(labels=labels, points=points))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AnswerError(f"a series in the answer is malformed ({exc!r})") from exc
    series.sort(key=lambda s: sorted(s.labels.items()))
    return series


def _error_text(answer: Any) -> str:
    """'errorType: error' from a Prometheus error answer, or ''."""
    if not isinstance(answer, dict) or not answer.get("error"):
        return ""
    kind = answer.get("errorType")
    return f"{kind}: {answer['error']}" if kind else str(answer["error"])


def _aligned(moment: datetime, step: timedelta) -> float:
    """`moment` as a Unix time rounded down to a multiple of `step`: the same grid on
    every run, so one sample does not drift between two buckets from query to query."""
    seconds = step.total_seconds()
    return math.floor(moment.timestamp() / seconds) * seconds


def _describe_failure(exc: BaseException, timeout: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is Prometheus running there?)"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot connect: {reason.strerror}"
    return f"cannot connect: {reason}"


def _read(response: Any) -> bytes:
    body = response.read(MAX_ANSWER_BYTES + 1)
    if len(body) > MAX_ANSWER_BYTES:
        raise AnswerError(f"the answer is larger than {MAX_ANSWER_BYTES // 2**20} MiB")
    return bytes(body)


def query_range(
    url: str,
    query: str,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    timeout: float = DEFAULT_TIMEOUT,
) -> RangeResult:
    """Run `query` over [start, end] every `step` on the Prometheus server at `url`.

    Sent as a form POST (long PromQL does not fit every URL limit). Never raises for
    network or server trouble: the result's `error` says what went wrong and where.
    """
    endpoint = url.rstrip("/") + "/api/v1/query_range"
    form = {
        "query": query,
        "start": f"{_aligned(start, step):.3f}",
        "end": f"{_aligned(end, step):.3f}",
        "step": f"{step.total_seconds():g}",
    }
    request = urllib.request.Request(
        endpoint,
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    where = f"Prometheus at {url}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return RangeResult(series=parse_matrix(_read(response)))
    except urllib.error.HTTPError as exc:
        with exc:
            try:
                detail = _error_text(json.loads(exc.read(65536)))
            except (ValueError, OSError):
                detail = ""
        return RangeResult(error=f"{where} answered HTTP {exc.code}: {detail or exc.reason}")
    except AnswerError as exc:
        return RangeResult(error=f"{where}: {exc}")
    except (urllib.error.URLError, OSError) as exc:
        return RangeResult(error=f"{where}: {_describe_failure(exc, timeout)}")
    except (http.client.HTTPException, ValueError) as exc:
        return RangeResult(error=f"{where}: bad HTTP answer ({type(exc).__name__}: {exc})")
