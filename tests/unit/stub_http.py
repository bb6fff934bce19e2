"""A scripted HTTP server on 127.0.0.1 for client unit tests: each request gets the next scripted answer.

Answers are real bytes on a real socket, so cut bodies, dropped connections and slow answers behave as they
do in front of PostHog, not as a mock imagines them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


@dataclass(frozen=True)
class Answer:
    """One scripted answer. `cut` sends only that many bytes of the body (with the full Content-Length) and
    closes; `drop` closes the connection without answering; `delay` waits before answering."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    cut: int | None = None
    drop: bool = False
    delay: float = 0.0


def json_answer(status: int, payload: object, **headers: str) -> Answer:
    return Answer(status, orjson.dumps(payload), {"Content-Type": "application/json", **headers})


def posthog_error(status: int, type_: str, code: str, detail: str, **headers: str) -> Answer:
    """PostHog's error envelope (posthog-api.md §5)."""
    return json_answer(status, {"type": type_, "code": code, "detail": detail, "attr": None}, **headers)


class StubServer:
    """Serves `script` in order; once it is used up, the last answer repeats (a server that always says 429)."""

    def __init__(self, script: Sequence[Answer]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with stub._lock:
                    stub.requests.append((self.command, self.path))
                    index = min(len(stub.requests) - 1, len(stub.script) - 1)
                    answer = stub.script[index]
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.drop:
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                if answer.cut is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer.body if answer.cut is None else answer.body[: answer.cut])
                if answer.cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

            do_GET = _serve
            do_POST = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def stub_server(*script: Answer) -> Iterator[StubServer]:
    with StubServer(script) as server:
        yield server
