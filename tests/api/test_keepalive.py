"""An unhandled error closes nothing but its own response: real uvicorn on loopback, one kept-alive socket."""

from __future__ import annotations

import json
import socket
import threading
import time

import uvicorn

from holocrm_api import ServingSettings, create_app
from tests.support.api import free_port


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-body")
        body += chunk
    return int(lines[0].split(" ")[1]), headers, body


def get(sock: socket.socket, path: str) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return read_response(sock)


def test_a_request_after_a_500_on_the_same_connection_succeeds(home):
    app = create_app(ServingSettings.from_env(home=home, reload_interval_s=0))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        snap = app.state.services.loader.snapshot

        def exploding(_):
            raise RuntimeError("a bug in a route")

        snap.scores["contact"].lookup = exploding  # this snapshot only; the deal scores still work
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for _ in range(3):  # 500, then a success, on the one socket, several times over
                status, headers, body = get(sock, "/api/contacts/C1/score")
                assert status == 500 and json.loads(body)["error"] == "internal_error"
                assert headers.get("connection", "").lower() != "close"
                status, _, body = get(sock, "/api/deals/D1/score")
                assert status == 200 and json.loads(body)["score"] == 0.7
    finally:
        server.should_exit = True
        thread.join(timeout=10)
