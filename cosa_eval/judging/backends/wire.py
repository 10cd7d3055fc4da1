"""A lean keep-alive HTTP/1.1 client for POSTing prebuilt JSON bodies to a plain-``http://`` server.

Against a local OpenAI-compatible server (vLLM serve, llama.cpp, SGLang, Ollama) the official
client's per-call work (request options, httpx models, the httpcore pool, anyio) costs ~2 ms of CPU
per call, which caps one process near 400 judgments/s; this wire costs ~0.15 ms. The openai client
still supplies the URL and headers (auth included), and its error classification applies to every
status this wire returns. It speaks only what those servers answer with: ``Content-Length`` or
chunked bodies, keep-alive or ``Connection: close``. HTTPS, proxies and Azure use the official client.
"""
from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

IDLE_S = 4.0           # reuse an idle connection only this long (uvicorn closes them after 5 s)
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
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def post(self, body: bytes) -> WireResponse:
        """Send ``body``; the whole answer, or ``WireError``/``TimeoutError``."""
        message = self._head + b"%d\r\n\r\n" % len(body) + body
        if _timeout is None:                     # Python 3.10
            return await asyncio.wait_for(self._send(message), self.timeout_s)
        async with _timeout(self.timeout_s):     # no extra task per call
            return await self._send(message)

    async def _send(self, message: bytes) -> WireResponse:
        while True:
            reader, writer, reused = await self._connection()
            try:
                response, keep = await _exchange(reader, writer, message, reused)
            except _Stale:
                writer.close()
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                raise WireError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
            except BaseException:
                writer.close()          # cancelled or timed out mid-answer: never reuse it
                raise
            if keep:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return response

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since < IDLE_S and not reader.at_eof() and not writer.is_closing():
                return reader, writer, True
            writer.close()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise WireError(f"cannot connect to {self.host}:{self.port} ({exc.strerror or exc})") from None
        return reader, writer, False

    async def aclose(self) -> None:
        """Close every idle connection."""
        for _reader, writer, _since in self._idle:
            writer.close()
        self._idle = []


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes,
                    reused: bool) -> tuple[WireResponse, bool]:
    """One request and its answer; whether the connection may be kept."""
    try:
        writer.write(message)
        head = await reader.readuntil(b"\r\n\r\n")
    except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
        if getattr(exc, "partial", b""):
            raise
        if reused:
            raise _Stale() from None
        raise WireError("the server closed the connection without answering") from None
    except asyncio.LimitOverrunError:
        raise WireError("the answer's headers are over 64 KiB") from None
    status_line, *lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1."):
        raise WireError(f"not an HTTP/1.1 answer: {status_line[:40]!r}")
    status = int(rest.split(" ", 1)[0])
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body, keep = await reader.read(), False
    return WireResponse(status, headers, body), keep


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip() or b"x", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass                    # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
