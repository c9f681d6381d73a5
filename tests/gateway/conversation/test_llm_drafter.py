"""The model drafter against a real chat-completions server on 127.0.0.1.

The server is a `ThreadingHTTPServer` with scripted answers (status, body, delay); it
records every request so the tests can say what was sent and how often the drafter
asked. A fake clock drives the circuit breaker, so no test waits for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.config import DraftConfig
from gateway.conversation.llm_drafter import LlmDrafter, LlmResult
from tests.support.chat_server import Answer, ChatServer, chat, running_chat_server
from tests.support.net import free_port

MAIL = "Hi, our API calls to api.example.com return 429 since this morning. What is the limit?"
PASSAGE = ("Rate limits", "Each key may send 100 requests per minute; retry after 60 seconds.")
GROUNDED = (
    "Hello Ana,\n\nThe 429 answers from api.example.com mean the key went over its limit "
    "of 100 requests per minute.\n\n1. Wait 60 seconds.\n2. Retry the failed calls."
)


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with running_chat_server([chat(GROUNDED)]) as state:
        yield state


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drafter(server: ChatServer, clock: Clock | None = None, **overrides: Any) -> LlmDrafter:
    options: dict[str, Any] = {
        "backend": "openai",
        "base_url": server.base_url,
        "model": "test-model",
        "timeout_seconds": 5.0,
        "failures_to_open": 2,
        "open_seconds": 30.0,
        **overrides,
    }
    return LlmDrafter(DraftConfig(**options), clock=clock or Clock())


def ask(d: LlmDrafter, mail: str = MAIL) -> LlmResult:
    return d.draft(
        mail=mail,
        thread=["Earlier: we upgraded the client last week."],
        brief={
            "asks": ["What is the limit?"],
            "facts": {"hostname": [{"value": "api.example.com"}]},
        },
        passages=[PASSAGE],
        language="en",
        customer_name="Ana",
        sources=[mail, PASSAGE[1], "Ana"],
    )


def test_a_grounded_answer_passes_and_the_request_carries_model_mail_passages_and_key(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTGATE_TEST_LLM_KEY", "sk-test-123")
    result = ask(drafter(server, api_key_env="SUPPORTGATE_TEST_LLM_KEY"))
    assert result == LlmResult(GROUNDED, "", "served-model")
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    body = request["json"]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.2
    user = body["messages"][-1]["content"]
    assert MAIL in user and PASSAGE[1] in user and PASSAGE[0] in user


def test_no_authorization_header_without_a_key(server: ChatServer) -> None:
    assert ask(drafter(server)).body == GROUNDED
    assert "Authorization" not in server.requests[0]["headers"]


def test_invented_values_are_refused_and_named(server: ChatServer) -> None:
    server.answers = [
        chat(
            "Hello Ana, we allowed 10.0.0.9 for account acct-999 at api.example.com; "
            "the upgrade costs $12.50."
        )
    ]
    result = ask(drafter(server))
    assert result.body is None
    assert result.refused_reason.startswith("LLM draft refused: invented values ")
    for value in ("10.0.0.9", "acct-999", "$12.50"):
        assert value in result.refused_reason
    assert "api.example.com" not in result.refused_reason


def test_placeholders_are_refused(server: ChatServer) -> None:
    server.answers = [chat("Hello [Customer Name], please send us your <account id>.")]
    result = ask(drafter(server))
    assert result.body is None
    assert "[Customer Name]" in result.refused_reason


def test_verifier_refusals_never_open_the_circuit(server: ChatServer) -> None:
    server.answers = [chat("Please retry from 192.168.7.7.")]
    d = drafter(server, failures_to_open=1)
    reasons = [ask(d).refused_reason for _ in range(3)]
    assert len(server.requests) == 3
    assert all(r.startswith("LLM draft refused") for r in reasons)


def test_a_slow_server_is_unavailable_within_the_timeout(server: ChatServer) -> None:
    server.answers = [Answer(body=chat(GROUNDED).body, delay=5.0)]
    started = time.monotonic()
    result = ask(drafter(server, timeout_seconds=0.3))
    assert time.monotonic() - started < 2.0
    assert result.body is None
    assert result.refused_reason == "LLM unavailable: timeout"


def test_the_circuit_opens_after_failures_and_closes_after_a_good_probe(
    server: ChatServer,
) -> None:
    server.answers = [Answer(status=500, body=b"{}")]
    clock = Clock()
    d = drafter(server, clock, failures_to_open=2, open_seconds=30.0)
    assert ask(d).refused_reason == "LLM unavailable: HTTP 500"
    assert ask(d).refused_reason == "LLM unavailable: HTTP 500"
    for _ in range(3):
        assert ask(d).refused_reason.startswith("LLM circuit open until ")
    assert len(server.requests) == 2
    clock.now += 29.0
    assert ask(d).refused_reason.startswith("LLM circuit open until ")
    assert len(server.requests) == 2
    clock.now += 1.5  # open_seconds passed: one probe; it fails, so the circuit reopens
    assert ask(d).refused_reason == "LLM unavailable: HTTP 500"
    assert ask(d).refused_reason.startswith("LLM circuit open until ")
    assert len(server.requests) == 3
    server.answers = [chat(GROUNDED)]
    clock.now += 31.0
    assert ask(d).body == GROUNDED
    assert ask(d).body == GROUNDED  # closed again: every call asks
    assert len(server.requests) == 5


def test_only_one_thread_probes_a_half_open_circuit(server: ChatServer) -> None:
    server.answers = [Answer(status=503, body=b"")]
    clock = Clock()
    d = drafter(server, clock, failures_to_open=1, open_seconds=10.0)
    ask(d)
    server.answers = [Answer(body=chat(GROUNDED).body, delay=0.5)]
    clock.now += 11.0
    results: list[LlmResult] = []
    threads = [threading.Thread(target=lambda: results.append(ask(d))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(server.requests) == 2
    assert sorted(r.body is not None for r in results) == [False, False, False, True]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(status=500, body=b"internal"), "LLM unavailable: HTTP 500"),
        (
            Answer(body=b"<html>not json</html>"),
            "LLM unavailable: the answer is not chat-completions JSON",
        ),
        (
            Answer(body=b'{"choices": []}'),
            "LLM unavailable: the answer is not chat-completions JSON",
        ),
        (chat("   "), "LLM unavailable: the answer has no text"),
    ],
)
def test_server_errors_and_bad_bodies_are_failures_not_crashes(
    server: ChatServer, answer: Answer, reason: str
) -> None:
    server.answers = [answer]
    d = drafter(server, failures_to_open=2)
    assert ask(d) == LlmResult(None, reason, "test-model")
    ask(d)
    assert ask(d).refused_reason.startswith("LLM circuit open until ")
    assert len(server.requests) == 2


def test_a_refused_connection_is_a_failure(server: ChatServer) -> None:
    d = drafter(server, base_url=f"http://127.0.0.1:{free_port()}/v1")
    result = ask(d)
    assert result.body is None
    assert result.refused_reason.startswith("LLM unavailable: connection failed")
