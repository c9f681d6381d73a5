"""Reading range queries from a real Prometheus, and every way that can go wrong.

The happy path and query errors run against a private Prometheus loaded with history;
the failures a real server cannot be made to produce (an HTML page from a proxy, a
server that never answers) come from plain sockets on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.metrics.prometheus import AnswerError, parse_matrix, query_range
from tests.support.net import free_port
from tests.support.prometheus import Prometheus, Sample, openmetrics

STEP = timedelta(minutes=5)


def grid_now() -> datetime:
    """The current time rounded down to the 5-minute grid the samples sit on."""
    return datetime.fromtimestamp(time.time() // 300 * 300, UTC)


def test_reads_each_label_set_with_its_samples(
    prometheus_factory: Callable[..., Prometheus],
) -> None:
    now = grid_now()
    samples = [
        ("queue_depth", {"queue": "mail"}, now - i * STEP, float(i % 7)) for i in range(2016)
    ]
    samples += [("queue_depth", {"queue": "sms"}, now - i * STEP, 42.0) for i in range(12)]
    server = prometheus_factory(history=openmetrics(samples))

    result = query_range(
        server.url, "queue_depth", start=now - timedelta(days=7), end=now, step=STEP
    )

    assert result.error is None
    mail, sms = result.series
    assert mail.labels == {"__name__": "queue_depth", "queue": "mail"}
    assert len(mail.points) == 2016
    assert mail.points[-1] == (now, 0.0)
    assert mail.points[-2] == (now - STEP, 1.0)
    assert all(b[0] - a[0] == STEP for a, b in zip(mail.points, mail.points[1:], strict=False))
    assert sms.labels["queue"] == "sms"
    assert [v for _, v in sms.points] == [42.0] * 12
    assert sms.points[0][0] == now - 11 * STEP


def test_nan_and_infinite_samples_are_dropped(
    prometheus_factory: Callable[..., Prometheus],
) -> None:
    now = grid_now()
    values = [1.0, float("nan"), 3.0, float("inf"), float("-inf"), 6.0]
    samples: list[Sample] = [("ratio", {}, now - (5 - i) * STEP, v) for i, v in enumerate(values)]
    server = prometheus_factory(history=openmetrics(samples))

    result = query_range(server.url, "ratio", start=now - 5 * STEP, end=now, step=STEP)

    assert result.error is None
    assert result.series[0].points == [
        (now - 5 * STEP, 1.0),
        (now - 3 * STEP, 3.0),
        (now, 6.0),
    ]


def test_a_bad_query_is_a_readable_error(prometheus_factory: Callable[..., Prometheus]) -> None:
    server = prometheus_factory()
    now = grid_now()

    result = query_range(server.url, "rate(x[5m]", start=now - STEP * 10, end=now, step=STEP)

    assert result.series == []
    assert result.error is not None
    assert result.error.startswith(f"Prometheus at {server.url} answered HTTP 400: bad_data:")
    assert "parse error" in result.error


def test_no_matching_series_is_no_series_and_no_error(
    prometheus_factory: Callable[..., Prometheus],
) -> None:
    server = prometheus_factory()
    now = grid_now()
    result = query_range(server.url, "does_not_exist", start=now - STEP, end=now, step=STEP)
    assert (result.series, result.error) == ([], None)


def test_prometheus_down_is_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    now = grid_now()
    result = query_range(url, "up", start=now - STEP, end=now, step=STEP)
    assert result.error == f"Prometheus at {url}: connection refused (is Prometheus running there?)"


@pytest.fixture
def http_answer() -> Iterator[Callable[[int, bytes], str]]:
    """A one-route HTTP server on 127.0.0.1 that answers every request with (code, body)."""
    servers: list[http.server.HTTPServer] = []

    def factory(code: int, body: bytes) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield factory
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_error_status_in_a_200_answer_is_the_error(
    http_answer: Callable[[int, bytes], str],
) -> None:
    url = http_answer(200, b'{"status":"error","errorType":"timeout","error":"query timed out"}')
    now = grid_now()
    result = query_range(url, "up", start=now - STEP, end=now, step=STEP)
    assert result.error == f"Prometheus at {url}: timeout: query timed out"


def test_an_html_page_is_not_mistaken_for_data(http_answer: Callable[[int, bytes], str]) -> None:
    url = http_answer(200, b"<html><body>Sign in to the proxy</body></html>")
    now = grid_now()
    result = query_range(url, "up", start=now - STEP, end=now, step=STEP)
    assert result.error == (
        f"Prometheus at {url}: the answer is not JSON (is the url a Prometheus server?)"
    )


def test_a_server_error_without_json_names_the_status(
    http_answer: Callable[[int, bytes], str],
) -> None:
    url = http_answer(503, b"upstream unavailable")
    now = grid_now()
    result = query_range(url, "up", start=now - STEP, end=now, step=STEP)
    assert result.error == f"Prometheus at {url} answered HTTP 503: Service Unavailable"


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel accepts; nobody ever answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        now = grid_now()
        began = time.monotonic()
        result = query_range(url, "up", start=now - STEP, end=now, step=STEP, timeout=0.5)
    assert time.monotonic() - began < 5
    assert result.error == f"Prometheus at {url}: no answer within 0.5 s"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"status":"error","errorType":"timeout","error":"query timed out"}', "timeout: query"),
        (b'{"status":"success","data":{"resultType":"vector","result":[]}}', "range vector"),
        (b'{"status":"success","data":{}}', "no data.result list"),
        (b"[1, 2]", "not a Prometheus API object"),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{}}]}}',
            "a series in the answer is malformed",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix",'
            b'"result":[{"metric":{},"values":[[1, "many"]]}]}}',
            "a series in the answer is malformed",
        ),
    ],
)
def test_answers_that_are_not_range_vectors_are_refused(body: bytes, expected: str) -> None:
    with pytest.raises(AnswerError, match=expected):
        parse_matrix(body)
