"""The OpenAI Batch API for the test server (``openai_server.py``): ``/v1/files`` and ``/v1/batches``.

Files: ``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}/content``. Batches: ``POST
/v1/batches`` (create; every ``custom_id`` of its input file is counted in ``submitted``), ``GET
/v1/batches`` (list, newest first), ``GET /v1/batches/{id}`` (retrieve: each call moves it one step,
validating -> in_progress -> the ``outcome``, after ``steps`` retrieves), ``POST
/v1/batches/{id}/cancel``. Outcomes: ``completed`` (every line answered as the server answers online),
``expired`` and ``cancelled`` (the first half answered, the rest in the error file), ``failed`` (no
output, ``errors`` set). ``hold``: a phase (``"upload"``, ``"create"`` before the batch exists,
``"created"`` after it exists but before the answer, ``"retrieve"``, ``"content"``) at which the
next such request blocks until ``release()``; ``reached`` is set when one is blocked there (so a
test can kill the client at that exact phase), ``passed`` once it has gone on.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any, Callable

OUTCOMES = ("completed", "expired", "cancelled", "failed")


class BatchAPI:
    """Files and batches in memory; ``answer(line, number) -> output line`` answers one input line."""

    def __init__(self, answer: Callable[[dict, int], dict]) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.submitted: Counter[str] = Counter()       # custom_id -> times it went into a created batch
        self.outcome, self.steps = "completed", 2
        self.hold: str | None = None
        self._waited = False
        self.reached, self.passed, self._release = threading.Event(), threading.Event(), threading.Event()

    def release(self) -> None:
        """Let the held request go on (and hold nothing more)."""
        self.hold = None
        self._release.set()

    def _pause(self, phase: str) -> None:
        if self.hold == phase:
            self.reached.set()
            self._release.wait(30)
            self._waited = True

    def handle(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, Any]:
        """(status, JSON object or bytes) of one request under ``/v1``."""
        answer = self._route(method, path, headers, raw)
        if self._waited:
            self.passed.set()
        return answer

    def _route(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p][1:]          # drop "v1"
        if method == "POST" and parts == ["files"]:
            self._pause("upload")
            return self._upload(headers, raw)
        if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            self._pause("content")
            return (200, self.files[parts[1]]) if parts[1] in self.files else (404, _error("no such file"))
        if method == "POST" and parts == ["batches"]:
            return self._create(json.loads(raw))
        if method == "GET" and parts == ["batches"]:
            with self.lock:
                data = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
            return 200, {"object": "list", "data": data, "has_more": False}
        if len(parts) >= 2 and parts[0] == "batches" and parts[1] in self.batches:
            batch = self.batches[parts[1]]
            if method == "GET" and len(parts) == 2:
                self._pause("retrieve")
                return 200, self._step(batch)
            if method == "POST" and parts[2:] == ["cancel"]:
                return 200, self._finish(batch, "cancelled")
        return 404, _error(f"no route {method} {path}")

    def _upload(self, headers: Any, raw: bytes) -> tuple[int, Any]:
        head = f"Content-Type: {headers.get('Content-Type')}\r\n\r\n".encode()
        message = BytesParser(policy=email_policy).parsebytes(head + raw)
        fields = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                  for part in message.iter_parts()}
        with self.lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = fields.get("file") or b""
        return 200, {"id": file_id, "object": "file", "bytes": len(self.files[file_id]), "created_at": 0,
                     "filename": "input.jsonl", "purpose": (fields.get("purpose") or b"").decode()}

    def _create(self, request: dict[str, Any]) -> tuple[int, Any]:
        self._pause("create")
        file_id = request.get("input_file_id")
        if file_id not in self.files:
            return 400, _error(f"no input file {file_id}")
        lines = [json.loads(line) for line in self.files[file_id].splitlines() if line.strip()]
        with self.lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            self.submitted.update(line["custom_id"] for line in lines)
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request.get("endpoint"), "errors": None,
                "input_file_id": file_id, "completion_window": request.get("completion_window"),
                "status": "validating", "output_file_id": None, "error_file_id": None,
                "created_at": time.time(), "metadata": request.get("metadata"), "polls": 0,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
        self._pause("created")
        return 200, self._public(self.batches[batch_id])

    def _step(self, batch: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            batch["polls"] += 1
            if batch["status"] == "validating":
                batch["status"] = "in_progress"
        if batch["status"] == "in_progress" and batch["polls"] >= self.steps:
            return self._finish(batch, self.outcome)
        return self._public(batch)

    def _finish(self, batch: dict[str, Any], outcome: str) -> dict[str, Any]:
        with self.lock:
            if batch["status"] in OUTCOMES:
                return self._public(batch)
            lines = [json.loads(line) for line in self.files[batch["input_file_id"]].splitlines() if line.strip()]
            done = len(lines) if outcome == "completed" else 0 if outcome == "failed" else len(lines) // 2
            output = [self.answer(line, number) for number, line in enumerate(lines[:done])]
            errors = [{"id": f"batch_req_x{n}", "custom_id": line["custom_id"], "response": None,
                       "error": {"code": f"batch_{outcome}", "message": f"this request was not run: batch {outcome}"}}
                      for n, line in enumerate(lines[done:])] if outcome != "failed" else []
            for name, rows in (("output_file_id", output), ("error_file_id", errors)):
                if rows:
                    file_id = f"file-{len(self.files) + 1}"
                    self.files[file_id] = "".join(json.dumps(row) + "\n" for row in rows).encode()
                    batch[name] = file_id
            batch["status"] = outcome
            batch["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(errors)}
            if outcome == "failed":
                batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "scripted failure"}]}
            return self._public(batch)

    @staticmethod
    def _public(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if k != "polls"}


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message}}
