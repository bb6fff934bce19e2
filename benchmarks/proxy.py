"""A latency-adding reverse proxy: every request waits `delay` seconds, then is relayed to the fake.

Threaded (one upstream keep-alive connection per client connection), streaming the response body in
chunks, so it adds the delay and little else. Stdlib only; listens on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

CHUNK = 256 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 600
    upstream_host: str
    upstream_port: int
    delay: float

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by design
        pass

    def _relay(self) -> None:
        time.sleep(self.delay)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn: http.client.HTTPConnection | None = getattr(self, "_upstream", None)
        if conn is None:
            conn = self._upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=600)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            conn.request(self.command, self.path, body, headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._upstream = None
            self.close_connection = True
            return
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.end_headers()
        while chunk := response.read(CHUNK):
            self.wfile.write(chunk)
        if response.will_close:
            conn.close()
            self._upstream = None

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay  # noqa: N815


class LatencyProxy:
    """`with LatencyProxy(upstream_url, 0.3) as proxy: proxy.url` relays with 300 ms added per request."""

    def __init__(self, upstream_url: str, delay_seconds: float) -> None:
        parts = urlsplit(upstream_url)
        handler = type("Relay", (_Relay,), {"upstream_host": parts.hostname, "upstream_port": parts.port,
                                            "delay": delay_seconds})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
