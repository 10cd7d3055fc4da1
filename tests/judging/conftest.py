"""Judging fixtures: the local OpenAI-compatible server, a judge.yaml pointing at it, a cache."""
from __future__ import annotations

from pathlib import Path

import pytest

from judging_helpers import JUDGE_MODEL, SECRET_KEY, write_judge
from openai_server import FakeOpenAIServer


@pytest.fixture
def judge_server(monkeypatch):
    """The local OpenAI-compatible server, with OPENAI_BASE_URL/OPENAI_API_KEY pointing at it."""
    with FakeOpenAIServer(model=JUDGE_MODEL) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
        yield server


@pytest.fixture
def cache_path(tmp_path, monkeypatch) -> Path:
    """A fresh cache file; COSA_CACHE_DIR points at its folder so defaults never touch ~/.cache."""
    monkeypatch.setenv("COSA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "judge_cache.sqlite"


@pytest.fixture
def judge_yaml(tmp_path) -> Path:
    return write_judge(tmp_path / "judges")
