"""A raw TCP server for HTTP edge cases the test server cannot produce (bad framing, 1xx, gzip).

Usage::

    with RawServer(lambda head, body: b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok") as server:
        ... server.url ...           # http://127.0.0.1:PORT/v1
        server.heads                 # every request head seen, as text with lower-cased names

``reply(head, body) -> bytes`` answers one request (its head as text, its body as bytes); the
connection stays open for the next request unless the reply says ``Connection: close``.
"""
from __future__ import annotations

import asyncio
import gzip
import json
import re
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Callable

Reply = Callable[[str, bytes], bytes]


def http_answer(status: int, body: bytes, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length."""
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def completion_bytes(text: str = "Rating: [[4]]", model: str = "judge-model") -> bytes:
    """A chat.completion body answering ``text``."""
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": model,
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 3}}).encode()


def gzipped(body: bytes) -> bytes:
    return http_answer(200, gzip.compress(body), "Content-Encoding: gzip", "Content-Type: application/json")


def self_signed(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (made with the openssl command) and a server context using it."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


class RawServer:
    """Serves ``reply`` on 127.0.0.1 at a free port in a thread of its own (over TLS when given a
    server context); a context manager."""

    def __init__(self, reply: Reply, tls: ssl.SSLContext | None = None) -> None:
        self.reply, self.tls = reply, tls
        self.heads: list[str] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                self.heads.append(head.lower())
                length = re.search(r"content-length: *(\d+)", head, re.I)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                answer = self.reply(head, body)
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower()[:answer.find(b"\r\n\r\n")]:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        writer.close()

    async def _main(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = server.sockets[0].getsockname()[1]
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        async with server:
            await self._stop.wait()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "RawServer":
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)
