"""One error boundary: an OSError of any kind is one ``cosa-eval: error:`` line naming the path, and
SIGTERM ends a run the way Ctrl-C does (one line, non-zero exit, nothing half-written)."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openai_server import FakeOpenAIServer
from cosa_eval import cli
from cosa_eval.scoring import leaderboard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "judging"))
from judging_helpers import SECRET_KEY, cosalign_samples, write_judge, write_samples_file  # noqa: E402

KINDS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EEXIST, errno.ENOTDIR, errno.ENOENT, errno.EISDIR,
         errno.EDQUOT, errno.ELOOP, errno.ENAMETOOLONG, errno.EIO)


def _one_line(capsys, error: BaseException) -> tuple[int, str]:
    def raising(*args, **kwargs):
        raise error

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(leaderboard, "add_runs", raising)
        with pytest.raises(SystemExit) as stop:
            cli.main(["leaderboard", "add", "somewhere", "--results", "results"])
    err = capsys.readouterr().err
    assert err.startswith("cosa-eval: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return stop.value.code, err


@pytest.mark.parametrize("code", KINDS, ids=[errno.errorcode[k] for k in KINDS])
def test_every_os_error_kind_is_one_line_naming_the_path(capsys, code):
    status, err = _one_line(capsys, OSError(code, os.strerror(code), "/data/results/leaderboard.csv"))
    assert status != 0 and "/data/results/leaderboard.csv" in err and errno.errorcode[code] in err


def test_a_rename_names_both_paths_and_an_unnamed_error_still_one_line(capsys):
    _, err = _one_line(capsys, OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/a/tmp", None, "/b/target"))
    assert "/a/tmp" in err and "/b/target" in err
    _, err = _one_line(capsys, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert "ENOSPC" in err


def test_sigterm_is_like_ctrl_c(tmp_path, cosalign_rows):
    samples = cosalign_samples(cosalign_rows, 0, 200)
    write_samples_file(tmp_path / "run", samples)
    judge = write_judge(tmp_path / "judges", concurrency=4)
    out = tmp_path / "out"
    with FakeOpenAIServer(model="judge-model") as server:
        server.set(latency_s=0.05)
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": SECRET_KEY}
        process = subprocess.Popen([sys.executable, "-m", "cosa_eval.cli", "judge", str(tmp_path / "run"),
                                    "--judge", str(judge), "--cache", str(tmp_path / "cache.sqlite"),
                                    "--output", str(out), "--no-progress"],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while server.completions < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert err.startswith("cosa-eval: error: ") and err.count("\n") == 1 and "terminated" in err, err
    assert not out.exists() or not list(out.iterdir())          # nothing half-written
