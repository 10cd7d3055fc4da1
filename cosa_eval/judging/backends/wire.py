"""A lean keep-alive HTTP/1.1 client for POSTing prebuilt JSON bodies to a plain-``http://`` server.

Against a local OpenAI-compatible server (vLLM serve, llama.cpp, SGLang, Ollama) the official
client's per-call work (request options, httpx models, the httpcore pool, anyio) costs ~2 ms of CPU
per call, which caps one process near 400 judgments/s; this wire costs well under 0.1 ms: each
connection is an ``asyncio.Protocol`` that parses the answer as its bytes arrive and wakes the
caller once, when the answer is whole. The openai client still supplies the URL and headers (auth
included), and its error classification applies to every status this wire returns. It speaks only
what those servers answer with: ``Content-Length`` or chunked bodies, keep-alive or
``Connection: close``. HTTPS, proxies and Azure use the official client.
"""
from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

IDLE_S = 4.0           # reuse an idle connection only this long (uvicorn closes them after 5 s)
MAX_HEAD = 65536       # bytes of status line and headers
_timeout = getattr(asyncio, "timeout", None)


class WireError(Exception):
    """The connection failed or the answer was not valid HTTP/1.1 (retried like a dropped call)."""


@dataclass
class WireResponse:
    """A whole answer: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes


def usable(url: str | None) -> bool:
    """Whether ``url`` is plain http with no proxy configured for it (``*_PROXY``/``NO_PROXY``)."""
    if not url:
        return False
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    proxies = urllib.request.getproxies()
    return not (proxies.get("http") or proxies.get("all")) or bool(urllib.request.proxy_bypass(parts.hostname))


class _Stale(Exception):
    """A reused connection closed before any byte of the answer: send again on a fresh one."""


class Wire:
    """Keep-alive connections to one server; ``post`` sends one JSON body to one path."""

    def __init__(self, url: str, headers: dict[str, str], timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.path = parts.path or "/"
        self.timeout_s = timeout_s
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items()
                  if name.lower() not in ("host", "content-length", "connection", "transfer-encoding")]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._idle: list[_Connection] = []

    async def post(self, body: bytes) -> WireResponse:
        """Send ``body``; the whole answer, or ``WireError``/``TimeoutError`` after ``timeout_s``."""
        message = self._head + b"%d\r\n\r\n" % len(body) + body
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while True:
            connection = self._reusable() or await self._connect(deadline)
            try:
                response = await connection.exchange(message, deadline)
            except _Stale:
                continue
            except BaseException:
                connection.close()      # failed, cancelled or timed out mid-answer: never reuse it
                raise
            if connection.keep:
                connection.since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return response

    def _reusable(self) -> "_Connection | None":
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.since < IDLE_S and connection.is_open():
                return connection
            connection.close()
        return None

    async def _connect(self, deadline: float) -> "_Connection":
        loop = asyncio.get_running_loop()
        opening = loop.create_connection(_Connection, self.host, self.port)
        try:
            if _timeout is None:                 # Python 3.10
                _transport, connection = await asyncio.wait_for(opening, deadline - loop.time())
            else:
                async with asyncio.timeout_at(deadline):
                    _transport, connection = await opening
        except asyncio.TimeoutError:
            raise                            # an OSError too on 3.11+: not a refused connection
        except OSError as exc:
            raise WireError(f"cannot connect to {self.host}:{self.port} ({exc.strerror or exc})") from None
        return connection

    async def aclose(self) -> None:
        """Close every idle connection."""
        for connection in self._idle:
            connection.close()
        self._idle = []


class _Connection(asyncio.Protocol):
    """One connection: sends a request and reads its answer incrementally, as bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.reader: _Answer = _Answer()
        self.used = False            # has answered before: a close before any byte is stale
        self.lost = False
        self.keep = False
        self.since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def is_open(self) -> bool:
        return not self.lost and not self.buffer and self.transport is not None and not self.transport.is_closing()

    async def exchange(self, message: bytes, deadline: float) -> WireResponse:
        """Write one request; the whole answer (``TimeoutError`` at ``deadline``)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.waiter, self.reader = loop.create_future(), _Answer()
        timer = loop.call_at(deadline, self._expire)
        try:
            self.transport.write(message)
            return await self.waiter
        finally:
            timer.cancel()
            self.waiter = None

    def _expire(self) -> None:
        self._settle(error=asyncio.TimeoutError())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return                   # bytes nobody asked for: is_open() now refuses this connection
        try:
            response = self.reader.feed(self.buffer)
        except WireError as exc:
            self._settle(error=exc)
            return
        if response is not None:
            self.keep = self.reader.keep and not self.buffer
            self.used = True
            self._settle(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is None:
            return
        if self.reader.until_eof and self.reader.head is not None:
            self.keep = False
            self._settle(WireResponse(self.reader.status, self.reader.headers, bytes(self.buffer)))
        elif not self.buffer and self.reader.head is None:
            self._settle(error=_Stale() if self.used else
                         WireError("the server closed the connection without answering"))
        else:
            self._settle(error=WireError("the server closed the connection mid-answer"))

    def _settle(self, response: WireResponse | None = None, error: BaseException | None = None) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(response)

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class _Answer:
    """Incremental reader of one HTTP/1.1 answer; ``feed`` consumes it from the buffer once whole."""

    def __init__(self) -> None:
        self.head: str | None = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep = True
        self.until_eof = False
        self.length: int | None = None
        self.chunks: list[bytes] | None = None

    def feed(self, buffer: bytearray) -> WireResponse | None:
        """The answer, once ``buffer`` holds all of it (then removed from ``buffer``), else None."""
        if self.head is None and not self._read_head(buffer):
            return None
        if self.until_eof:
            return None
        if self.chunks is not None:
            return self._read_chunks(buffer)
        assert self.length is not None
        if len(buffer) < self.length:
            return None
        body = bytes(buffer[:self.length])
        del buffer[:self.length]
        return WireResponse(self.status, self.headers, body)

    def _read_head(self, buffer: bytearray) -> bool:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                raise WireError("the answer's headers are over 64 KiB")
            return False
        self.head = buffer[:end].decode("latin-1")
        del buffer[:end + 4]
        status_line, *lines = self.head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise WireError(f"not an HTTP/1.1 answer: {status_line[:40]!r}")
        try:
            self.status = int(rest.split(" ", 1)[0])
        except ValueError:
            raise WireError(f"not an HTTP status line: {status_line[:40]!r}") from None
        for line in lines:
            name, _, value = line.partition(":")
            if name:
                self.headers[name.strip().lower()] = value.strip()
        self.keep = self.headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.chunks = []
        elif "content-length" in self.headers:
            try:
                self.length = int(self.headers["content-length"])
            except ValueError:
                raise WireError("the answer's Content-Length is not a number") from None
        else:
            self.until_eof, self.keep = True, False
        return True

    def _read_chunks(self, buffer: bytearray) -> WireResponse | None:
        assert self.chunks is not None
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                return None
            try:
                size = int(bytes(buffer[:end]).split(b";", 1)[0].strip() or b"x", 16)
            except ValueError:
                raise WireError("a chunk size of the answer is not a number") from None
            if size == 0:
                trailers = buffer.find(b"\r\n\r\n", end)     # after any trailer lines
                if trailers < 0:
                    return None
                del buffer[:trailers + 4]
                return WireResponse(self.status, self.headers, b"".join(self.chunks))
            if len(buffer) < end + 2 + size + 2:
                return None
            self.chunks.append(bytes(buffer[end + 2:end + 2 + size]))
            del buffer[:end + 2 + size + 2]
