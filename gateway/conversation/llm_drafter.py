"""An optional drafter that asks an OpenAI-compatible chat endpoint for the reply body.

Why it is shaped so:
- It only proposes. The body it returns goes into the review queue like any template
  draft, and only when `nlp.drafting.verify` finds no value (IP, account id, price,
  date, number…) that the mail, the thread or our passages do not hold, and no blank
  left to fill. Otherwise the template's draft stands and the brief says why.
- It never raises and never blocks the pipeline for long: every failure (timeout,
  refused connection, HTTP error, an answer that is not chat-completions JSON) becomes a
  result with a reason. After `failures_to_open` failures in a row a circuit breaker
  stops asking for `open_seconds`, then lets one request probe the server again; the
  runner threads share one breaker, behind a lock. Verifier refusals are the model's
  answers, not the server's failures, so they never open the circuit.
- urllib from the standard library: one POST per draft needs no client dependency.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.config import DraftConfig
from nlp.drafting.prompt import build_messages
from nlp.drafting.verify import placeholders, verify

log = logging.getLogger(__name__)

TEMPERATURE = 0.2
MAX_ANSWER_BYTES = 2 * 1024 * 1024
MAX_NAMED_VALUES = 8


@dataclass(frozen=True)
class LlmResult:
    """A verified body, or none and the reason (for the brief a rep reads)."""

    body: str | None
    refused_reason: str
    model: str


class _Failure(Exception):
    """The server did not give a usable answer; counts toward opening the circuit."""


class Circuit:
    """Consecutive-failure breaker: closed → open for `open_seconds` → one probe."""

    def __init__(
        self, failures_to_open: int, open_seconds: float, clock: Callable[[], float]
    ) -> None:
        self._threshold = max(1, failures_to_open)
        self._open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    def blocked_for(self) -> float:
        """Seconds until a request may go out (0: go ahead; this caller may be the probe)."""
        with self._lock:
            if self._failures < self._threshold:
                return 0.0
            remaining = self._open_until - self._clock()
            if remaining > 0:
                return remaining
            if self._probing:  # another thread is already finding out
                return 1e-3
            self._probing = True
            return 0.0

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._probing = 0, False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            if self._failures >= self._threshold:
                self._open_until = self._clock() + self._open_seconds


class LlmDrafter:
    """Drafts through `{base_url}/chat/completions`; shared by the runner threads."""

    def __init__(self, config: DraftConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self._clock = clock
        self.circuit = Circuit(config.failures_to_open, config.open_seconds, clock)

    def draft(
        self,
        *,
        mail: str,
        thread: Sequence[str],
        brief: Mapping[str, Any],
        passages: Sequence[tuple[str, str]],
        language: str,
        customer_name: str,
        sources: Sequence[str],
    ) -> LlmResult:
        model = self.config.model
        wait = self.circuit.blocked_for()
        if wait > 0:
            until = datetime.now(UTC) + timedelta(seconds=wait)
            return LlmResult(None, f"LLM circuit open until {until:%H:%M}Z", model)
        try:
            messages = build_messages(
                mail=mail,
                thread=thread,
                brief=brief,
                passages=passages,
                language=language,
                customer_name=customer_name,
            )
            content, model = self._ask(messages)
        except _Failure as exc:
            self.circuit.failed()
            log.warning("model drafter at %s unavailable: %s", self.url, exc)
            return LlmResult(None, f"LLM unavailable: {exc}", model)
        except Exception as exc:  # a drafter must never take the pipeline down
            self.circuit.failed()
            log.exception("model drafter failed")
            return LlmResult(None, f"LLM unavailable: {type(exc).__name__}", model)
        self.circuit.succeeded()
        return self._checked(content, sources, model)

    def _checked(self, content: str, sources: Sequence[str], model: str) -> LlmResult:
        try:
            invented = verify(content, [s for s in sources if isinstance(s, str)])
            blanks = placeholders(content)
        except Exception:  # a verifier bug refuses the draft rather than passing it
            log.exception("draft verifier failed")
            return LlmResult(None, "LLM draft refused: the verifier failed", model)
        if invented:
            named = ", ".join(invented[:MAX_NAMED_VALUES])
            more = (
                f" (+{len(invented) - MAX_NAMED_VALUES} more)"
                if len(invented) > MAX_NAMED_VALUES
                else ""
            )
            return LlmResult(None, f"LLM draft refused: invented values {named}{more}", model)
        if blanks:
            return LlmResult(None, f"LLM draft refused: placeholders {', '.join(blanks)}", model)
        return LlmResult(content, "", model)

    def _ask(self, messages: list[dict[str, str]]) -> tuple[str, str]:
        payload = {"model": self.config.model, "messages": messages, "temperature": TEMPERATURE}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        raw = self._fetch(request)
        try:
            answer = json.loads(raw)
            content = answer["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Failure("the answer is not chat-completions JSON") from exc
        if not isinstance(content, str) or not content.strip():
            raise _Failure("the answer has no text")
        model = answer.get("model") if isinstance(answer.get("model"), str) else None
        return content.strip(), model or self.config.model

    def _fetch(self, request: urllib.request.Request) -> bytes:
        """The response body, within about `timeout_seconds` (each socket wait is bounded
        by it, and reading stops once the whole call has taken that long)."""
        timeout = self.config.timeout_seconds
        deadline = self._clock() + timeout
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                chunks: list[bytes] = []
                size = 0
                while chunk := response.read(65536):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise _Failure("the answer is too large")
                    if self._clock() > deadline:
                        raise _Failure("timeout")
                return b"".join(chunks)
        except urllib.error.HTTPError as exc:
            raise _Failure(f"HTTP {exc.code}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Failure("timeout") from exc
            raise _Failure(f"connection failed ({exc.reason})") from exc
        except TimeoutError as exc:
            raise _Failure("timeout") from exc
        except OSError as exc:
            raise _Failure(f"connection failed ({type(exc).__name__})") from exc
