"""A judge run's output folder is written all or nothing: a full disk after the paid calls is one
error line naming the folder, leaves no judged file without its manifest, and the re-run pays nothing."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from judging_helpers import cosalign_samples, write_samples_file
from cosa_eval.cli import main


def test_a_full_output_disk_is_one_line_and_the_rerun_is_free(judge_server, cache_path, tmp_path, judge_yaml,
                                                              cosalign_rows, capsys, monkeypatch):
    write_samples_file(tmp_path / "run", cosalign_samples(cosalign_rows, 0, 4))
    out = tmp_path / "out"
    argv = ["judge", str(tmp_path / "run"), "--judge", str(judge_yaml), "--output", str(out), "--no-progress"]
    real = Path.write_text

    def full(self, *args, **kwargs):
        if self.parent == out:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))      # a write() names no file
        return real(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", full)
        with pytest.raises(SystemExit) as stop:
            main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"cosa-eval: error: {out}: ") and "ENOSPC" in err
    assert not out.exists() or not list(out.iterdir())                  # no half-written run
    paid = judge_server.request_count
    assert main(argv) == 0
    assert judge_server.request_count == paid                           # every answer came from the cache
    assert {p.name for p in out.iterdir()} >= {"scores.json", "judge_run.json"}
