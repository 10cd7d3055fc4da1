"""A lean OpenAI-compatible server for speed benchmarks: one asyncio event loop, keep-alive HTTP/1.1.

    python benchmarks/lean_server.py --latency 0.02      # prints its base URL, serves until killed

It answers ``POST …/chat/completions`` with ``tests/openai_server.py``'s ``rubric_answer`` (the
same verdicts as the test server) after ``--latency`` seconds, and ``GET …/models``. It has no
fault injection and records nothing: it exists so that a benchmark on a 2-core machine measures the
client. The test server spends 0.3-0.4 ms of CPU per call (a thread per connection, the GIL), on
the same cores as the client it serves; this one spends a fraction of that, so wall time over
N*L/C shows the client's overhead rather than the server's.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from openai_server import Reply, completion, rubric_answer  # noqa: E402

MODEL = "judge-model"


class _Connection(asyncio.Protocol):
    """One client connection: requests parsed as their bytes arrive, each answered after the latency."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            method, path, _ = head.split(" ", 2)
            answer = self._route(method, path.split("?", 1)[0].rstrip("/"), body)
            if self.latency_s and method == "POST":
                asyncio.get_running_loop().call_later(self.latency_s, self._write, answer)
            else:
                self._write(answer)

    def _route(self, method: str, path: str, body: bytes) -> bytes:
        if method == "GET" and path.endswith("/models"):
            return _response(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        if method != "POST" or not path.endswith("/chat/completions"):
            return _response(404, {"error": {"message": f"no route {path}"}})
        request = json.loads(body)
        messages = request.get("messages", [])
        return _response(200, completion(request.get("model", MODEL), messages, Reply(rubric_answer(messages))))

    def _write(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)


def _response(status: int, data: object) -> bytes:
    body = json.dumps(data).encode("utf-8")
    reason = {200: "OK", 404: "Not Found"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


async def serve(latency_s: float, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(latency_s), "127.0.0.1", port, backlog=1024)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.latency, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
