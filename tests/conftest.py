"""Shared fixtures: invented benchmark data, the real CoSA data (only where a test is about it), a tiny
random Llama, and a local data directory."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import invented_data
from tiny_model import build_tiny_llama

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COSA_SHARED_DIR", ROOT.parent / "shared"))
SHARED_COSALIGN = SHARED / "data/cosa/reconstructed/cosalign_test_reconstructed.jsonl"
SHARED_CONFIGS = SHARED / "data/cosa/reconstructed/cosapien_safety_configs_from_repo.json"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def cosalign_rows() -> list[dict]:
    """Invented CoSAlign-Test-schema rows, 8 configs x 400, for the tests of mechanisms."""
    return invented_data.cosalign_rows()


@pytest.fixture(scope="session")
def cosapien_configs() -> dict[str, str]:
    """Invented safety configs under the five CoSApien split names."""
    return invented_data.cosapien_configs()


def shared_file(path: Path) -> Path:
    """A file of the real data; skips saying how to get it, and fails on CI, where it must be."""
    if path.is_file():
        return path
    reason = (f"real CoSA data not found at {path}: set COSA_SHARED_DIR to a folder holding "
              "data/cosa/reconstructed/ (CI has it as ../shared)")
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; on CI the tests of the real data must run, not skip")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_cosalign_rows() -> list[dict]:
    """The shared reconstruction of CoSAlign-Test (3,200 rows), only for tests about that data."""
    text = shared_file(SHARED_COSALIGN).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="session")
def real_cosapien_configs() -> dict[str, str]:
    """The five CoSApien configs from the reference repository, only for tests about them."""
    data = json.loads(shared_file(SHARED_CONFIGS).read_text(encoding="utf-8"))
    return {item["split"]: item["config"] for item in data["configs"]}


@pytest.fixture(scope="session")
def local_data_dir(tmp_path_factory, cosalign_rows, cosapien_configs) -> Path:
    """A COSA_DATA_DIR of invented data, in the hub schemas."""
    return invented_data.write_local_data(tmp_path_factory.mktemp("cosa-data"), cosalign_rows, cosapien_configs)
