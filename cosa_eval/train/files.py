"""Resumable jsonl steps: read input rows, skip output rows already written, keep a manifest.

Every pipeline step reads one jsonl file and appends to another, one row per unit of work keyed
by ``id``. A re-run reads the ids already in the output and does only the rest; a line cut short
by a crash is dropped and redone. Beside the output sits ``<output>.manifest.json``: input file
hashes, settings, package versions and counts, rewritten at the end of every run.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import CosaError
from ..jsonl import iter_jsonl

_VERSIONED = ("cosa-eval", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "openai",
              "vllm", "lm_eval")


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Rows of a jsonl file; a bad line or a missing field is a one-line ``CosaError``."""
    path = Path(path)
    if not path.is_file():
        raise CosaError(f"{path} does not exist; pass the output file of the previous step")
    rows = []
    for number, row in iter_jsonl(path):
        for name in required:
            if name not in row:
                raise CosaError(f"{path}: line {number}: missing field {name!r}; was it written by the "
                                "previous 'cosa-eval train' step?")
        row.setdefault("_row", number)
        rows.append(row)
    return rows


def _not_text(path: Path, exc: UnicodeDecodeError) -> str:
    return (f"{path}: byte {exc.start} is not UTF-8 text; 'cosa-eval train' steps read and write UTF-8 jsonl "
            "(one JSON object a line): pass such a file")


def check_distinct(source: str | Path | None, target: str | Path | None) -> None:
    """Refuse a step whose output is its own input (it would rewrite the rows it reads)."""
    if source is None or target is None:
        return
    source, target = Path(source), Path(target)
    same = os.path.samefile(source, target) if source.exists() and target.exists() else (
        source.resolve() == target.resolve())
    if same:
        raise CosaError(f"--input and --output are the same file ({source}); write the step's output to a new file")


def stable_id(*parts: str) -> str:
    """A short content hash: the identity of a row that has no ``id`` of its own."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change a step's output (absent ones left out)."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def manifest_path(output: str | Path, folder: bool = False) -> Path:
    """``<file>.manifest.json`` beside a jsonl output, ``<folder>/cosa_manifest.json`` in a model folder."""
    output = Path(output)
    return output / "cosa_manifest.json" if folder else output.with_name(output.name + ".manifest.json")


def write_manifest(output: str | Path, step: str, inputs: Iterable[str | Path], settings: dict[str, Any],
                   counts: dict[str, Any], folder: bool = False) -> Path:
    """Write the step's manifest atomically (see :func:`manifest_path`)."""
    path = manifest_path(output, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "step": step,
        "output": str(output),
        "inputs": {str(p): file_sha256(p) for p in inputs if Path(p).is_file()},
        "settings": settings,
        "versions": package_versions(),
        "counts": counts,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(output: str | Path, folder: bool = False) -> dict[str, Any] | None:
    path = manifest_path(output, folder)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


class ResumableWriter:
    """Appends rows to a jsonl file, one flushed line each, remembering which ids are done."""

    def __init__(self, path: str | Path, key: str = "id") -> None:
        self.path = Path(path)
        self.key = key
        self.done: set[str] = set()
        self.written = 0
        self._handle = None
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CosaError(_not_text(self.path, exc)) from None
        lines = text.split("\n")
        kept = []
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash: the row is redone
            if isinstance(row, dict) and self.key in row:
                self.done.add(str(row[self.key]))
                kept.append(line)
        repaired = "".join(line + "\n" for line in kept)
        if repaired != text:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(repaired, encoding="utf-8")
            os.replace(tmp, self.path)

    def is_done(self, row_id: str) -> bool:
        return str(row_id) in self.done

    def write(self, row: dict[str, Any]) -> None:
        row_id = str(row[self.key])
        if row_id in self.done:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        clean = {k: v for k, v in row.items() if k != "_row"}
        self._handle.write(json.dumps(clean, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.done.add(row_id)
        self.written += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "ResumableWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batched(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]


def progress(iterable: Iterable[Any] | None, total: int | None, desc: str, unit: str = "row") -> Any:
    """A tqdm bar on stderr (over ``iterable``, or updated by hand when None); ``COSA_NO_PROGRESS=1``
    turns it off."""
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=bool(os.environ.get("COSA_NO_PROGRESS")))
