"""A third-party backend, pip-installed from tests/plugins, is used by name from a judge.yaml."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from judging_helpers import cosalign_samples, write_judge
from cosa_eval.errors import CosaError
from cosa_eval.judging import judge_samples, load_judge
from cosa_eval.judging.registry import backend_names

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "cosa_eval_echo_backend"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-src")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(PLUGIN)],
                   check=True, cwd=build, capture_output=True, timeout=300)
    return target


def test_plugin_backend_is_found_by_entry_point(plugin_site, monkeypatch, tmp_path, cosalign_rows):
    assert "echo" not in backend_names()
    monkeypatch.syspath_prepend(str(plugin_site))
    importlib.invalidate_caches()
    assert {"echo", "openai", "vllm", "transformers"} <= set(backend_names())
    judge = load_judge(write_judge(tmp_path, backend="echo", model="echo-1", prices=None))
    records = judge_samples(cosalign_samples(cosalign_rows, 400, 4), judge,
                            cache_path=tmp_path / "c.sqlite", progress=False)
    assert {r.rating for r in records} == {3}
    assert all(r.categories["Violence"] and r.extra["judge_backend"] == "echo" for r in records)
    assert all(r.extra["judge_endpoint"] == "local" for r in records)
    backend = judge.backend()
    assert backend.concurrency == judge.concurrency and backend.closed >= 1     # the contract's hooks
    monkeypatch.undo()
    importlib.invalidate_caches()
    sys.modules.pop("cosa_eval_echo_backend", None)


def test_missing_backend_dependency_says_what_to_install(monkeypatch):
    from importlib.metadata import EntryPoint

    from cosa_eval.judging import registry
    ghost = EntryPoint(name="ghost", value="no_such_module_for_cosa:Ghost", group="cosa_eval.judges")
    monkeypatch.setattr(registry, "_entry_points", lambda: {"ghost": ghost})
    with pytest.raises(CosaError, match=r"judge backend 'ghost' could not be imported \(ModuleNotFoundError.*install the package"):
        registry.load_backend_class("ghost")
    with pytest.raises(CosaError, match=r"unknown judge backend 'ghots' \(did you mean 'ghost'\?\); registered: ghost"):
        registry.load_backend_class("ghots")


def test_openai_package_missing_is_reported_by_check_ready(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)          # make "import openai" fail
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    with pytest.raises(CosaError, match=r"needs the openai package: pip install 'cosa-eval\[api\]'"):
        load_judge("gpt-4o").check_ready()


class OldStyleBackend:
    """A backend without identity() and aclose(): refused, naming what is missing."""

    name = "old"

    def check_ready(self) -> None: ...

    async def complete(self, requests): ...


def test_a_backend_missing_a_hook_is_refused_by_name(monkeypatch):
    from importlib.metadata import EntryPoint

    from cosa_eval.judging import registry
    old = EntryPoint(name="old", value=f"{__name__}:OldStyleBackend", group="cosa_eval.judges")
    monkeypatch.setattr(registry, "_entry_points", lambda: {"old": old})
    with pytest.raises(CosaError, match=r"judge backend 'old' .* has no identity\(\), aclose\(\); see .*base.py"):
        registry.load_backend_class("old")
