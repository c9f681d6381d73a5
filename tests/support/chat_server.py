"""A real HTTP server on 127.0.0.1 that speaks the chat-completions API with scripted
answers, for the model drafter's tests. Plain Python: no test runner needed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0


def chat(content: str, model: str = "served-model") -> Answer:
    data = {"model": model, "choices": [{"message": {"role": "assistant", "content": content}}]}
    return Answer(body=json.dumps(data).encode())


@dataclass
class ChatServer:
    """Scripted answers, one per request; the last one repeats."""

    answers: list[Answer] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    # Called with each request as it arrives, before the answer (tests look around then).
    on_request: Callable[[dict[str, Any]], None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def next_answer(self, record: dict[str, Any]) -> Answer:
        if self.on_request is not None:
            self.on_request(record)
        with self.lock:
            self.requests.append(record)
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _handler(state: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            record = {"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)}
            answer = state.next_answer(record)
            if answer.delay:
                state.stopping.wait(answer.delay)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except OSError:
                pass  # the client gave up waiting

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_chat_server(answers: list[Answer]) -> Iterator[ChatServer]:
    """Serve `answers` (one per request, the last repeats) until the block ends."""
    state = ChatServer(answers=answers)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
