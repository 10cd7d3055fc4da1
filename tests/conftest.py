"""Shared fixtures: the shared CoSA data, a tiny random Llama, and a local data directory."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

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
def shared_cosalign_rows() -> list[dict]:
    return [json.loads(line) for line in SHARED_COSALIGN.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def cosapien_configs() -> dict[str, str]:
    data = json.loads(SHARED_CONFIGS.read_text(encoding="utf-8"))
    return {item["split"]: item["config"] for item in data["configs"]}


def write_local_data(root: Path, cosalign_rows: list[dict], configs: dict[str, str]) -> Path:
    """A COSA_DATA_DIR: the shared CoSAlign-Test rows and the project's CoSApien-schema prompts."""
    for row in cosalign_rows:
        path = root / "cosalign_test" / f"{row['split']}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({k: row[k] for k in ("prompt", "mode", "situation")}) + "\n")
    prompts = [json.loads(line) for line in (ROOT / "tests/data/cosapien_prompts.jsonl").read_text().splitlines()]
    for row in prompts:
        path = root / "cosapien" / f"{row['split']}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"prompt": row["prompt"], "scenario": configs[row["split"]],
                                     "type": row["type"]}) + "\n")
    return root


@pytest.fixture(scope="session")
def local_data_dir(tmp_path_factory, shared_cosalign_rows, cosapien_configs) -> Path:
    return write_local_data(tmp_path_factory.mktemp("cosa-data"), shared_cosalign_rows, cosapien_configs)
