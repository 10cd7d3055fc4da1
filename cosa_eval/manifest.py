"""The run manifest (``judge_run.json``): which run wrote a folder's judged files.

``cosa-eval judge`` owns its output folder: it refuses a folder holding another run's judged files
(unless told to overwrite them), and records the ids (sha256) of its samples files, the judge, its
identity (endpoint, model), rubric hashes, parser and cosa-eval version, and the sha256 of every
judged file it wrote. ``cosa-eval leaderboard add`` refuses judged files the manifest beside them
does not list with that hash (a mix of runs, or a file changed afterwards).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .atomic import check_folder
from .errors import CosaError
from .jsonl import read_json_object
from .records import JUDGED_GLOB

MANIFEST = "judge_run.json"
SCORES = "scores.json"
# What makes two judge runs the same run (the rest of the manifest describes what happened).
IDENTITY_KEYS = ("samples", "judge", "rubric_hashes", "parser", "judge_identity")


def sha256_of(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes: the id of a samples or judged file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def samples_ids(files: Iterable[Path]) -> list[dict[str, str]]:
    """``[{"path", "sha256"}]`` of the samples files a run judges."""
    return [{"path": str(path), "sha256": sha256_of(path)} for path in files]


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when there is none; a broken one is a one-line error."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    return read_json_object(path, "run manifest", "re-run 'cosa-eval judge' with --overwrite to rewrite the folder")


def _identity(manifest: dict[str, Any]) -> dict[str, Any]:
    ids = dict(manifest)
    ids["samples"] = sorted(s.get("sha256") for s in manifest.get("samples") or [] if isinstance(s, dict))
    return {key: ids.get(key) for key in IDENTITY_KEYS}


def check_writable(output: Path) -> None:
    """Raise unless ``output`` is (or can be made) a writable folder; creates nothing that stays."""
    ancestor = check_folder("--output", output)
    try:
        if output.is_dir():
            with tempfile.TemporaryFile(dir=output):
                pass
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".cosa-eval-probe-", dir=ancestor))
    except OSError as exc:
        raise CosaError(f"--output {output}: cannot write in {output if output.is_dir() else ancestor} "
                        f"({exc.strerror or exc}); choose a writable --output") from None


def claim_output(output: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """Before any judge call: the folder is writable and holds no other run's files (or they go)."""
    check_writable(output)
    if not output.is_dir():
        return
    judged = sorted(output.glob(JUDGED_GLOB))
    owned = [p for p in (output / SCORES, output / MANIFEST) if p.exists()]
    if not judged and not owned:
        return
    previous = read_manifest(output) if not overwrite else None
    if previous is not None and _identity(previous) == _identity(manifest):
        return  # the same run again (a resume): its files are rewritten
    if not overwrite:
        whose = ("no judge_run.json saying which run wrote them" if previous is None
                 else "a judge_run.json of another run (other samples, judge, rubrics, parser, endpoint or model)")
        raise CosaError(f"--output {output} already holds {len(judged)} judged file(s) and {whose}; "
                        "choose a new --output, or pass --overwrite to remove them first")
    for path in judged + owned:
        path.unlink()


def write_manifest(output: Path, manifest: dict[str, Any], judged: Iterable[Path]) -> Path:
    """Write ``judge_run.json`` with the sha256 of each judged file written (atomically)."""
    data = {**manifest, "cosa_eval_version": __version__,
            "judged_files": {path.name: sha256_of(path) for path in sorted(judged)}}
    path = output / MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def check_run_files(files: list[Path]) -> dict[Path, dict[str, Any]]:
    """Each folder's manifest; raise if a judged file is not the one its folder's manifest lists.

    A folder without a manifest (judged files written by an older cosa-eval, or by hand) is
    accepted unverified. Returns ``folder -> manifest`` for the folders that have one.
    """
    manifests: dict[Path, dict[str, Any]] = {}
    for folder in sorted({file.parent for file in files}):
        manifest = read_manifest(folder)
        if manifest is not None:
            manifests[folder] = manifest
        if manifest is None or not isinstance(manifest.get("judged_files"), dict):
            continue
        listed = manifest["judged_files"]
        for file in sorted(folder.glob(JUDGED_GLOB)):
            if file.name not in listed:
                raise CosaError(f"{file} is not part of the run recorded in {folder / MANIFEST} (a file of "
                                "another run?); remove it, or re-judge into a new --output folder")
            if file in files and sha256_of(file) != listed[file.name]:
                raise CosaError(f"{file} was changed after the run recorded in {folder / MANIFEST} wrote it; "
                                "re-run 'cosa-eval judge' with --overwrite to rewrite the folder")
        missing = sorted(set(listed) - {f.name for f in folder.glob(JUDGED_GLOB)})
        if missing:
            raise CosaError(f"{folder}: {missing[0]} of the run recorded in {MANIFEST} is missing; restore it, "
                            "or re-run 'cosa-eval judge' with --overwrite")
    return manifests
