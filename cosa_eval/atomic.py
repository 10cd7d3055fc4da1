"""Writing files all or nothing: every file goes to a temporary beside its target first, and the
targets are replaced only once every temporary is complete, so a failure (a full disk, a bad
value, Ctrl-C) leaves each target as it was and no temporary behind."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from .errors import CosaError


def check_folder(option: str, path: Path) -> Path:
    """Refuse a folder option (``--output DIR``) naming a file, a symlink to nothing, or a path under
    one, before anything is written; returns the nearest part of ``path`` that exists."""
    ancestor = path
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        kind = "a symlink to nothing" if ancestor.is_symlink() and not ancestor.exists() else "a file"
        where = f"{option} {path}" + ("" if ancestor == path else f": {ancestor}")
        raise CosaError(f"{where} is {kind}, not a folder; choose another {option} (a folder, created if missing)")
    return ancestor


@contextmanager
def replacing(targets: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield one temporary path per target; write them, and on a clean exit each replaces its target.

    A new file gets mode 0644, a replaced one keeps its mode. An ``OSError`` without a path (a
    write that found the disk full) is given the folder of the targets, so its message names it.
    """
    temps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            except OSError as error:
                raise OSError(error.errno, error.strerror, str(target.parent)) from None
            temps.append(Path(name))
            os.fchmod(fd, target.stat().st_mode & 0o777 if target.exists() else 0o644)
            os.close(fd)
        yield temps
        for temp, target in zip(temps, targets):
            os.replace(temp, target)
    except OSError as error:
        if error.filename is None and targets:
            raise OSError(error.errno, error.strerror, str(targets[0].parent)) from error
        raise
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def write_texts(texts: dict[Path, str]) -> list[Path]:
    """Write UTF-8 texts to their paths, all or nothing; returns the paths."""
    paths = list(texts)
    with replacing(paths) as temps:
        for temp, path in zip(temps, paths):
            temp.write_text(texts[path], encoding="utf-8")
    return paths
