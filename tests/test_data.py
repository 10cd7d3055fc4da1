import json

import pytest
import yaml

from cosa_eval.config_text import frame_scenario
from cosa_eval.data import COSALIGN_TEST_SPLITS, COSAPIEN_SPLITS, config_group_of, load_docs
from cosa_eval.errors import CosaError
from cosa_eval.fewshot import demos_file


def test_local_cosalign_split_loads_with_rendered_configs(local_data_dir):
    docs = load_docs("cosalign_test", "Violence", data_dir=local_data_dir)
    assert len(docs) == 400
    assert {d["situation"] for d in docs} == {1, 2, 3}
    assert all(d["allowed_categories"] == ["Violence"] and d["config_group"] == "seen" for d in docs)
    assert all((d["benchmark"], d["schema"], d["variant"], d["config_id"], d["demos"])
               == ("cosalign_test", "cosalign_test", "0shot", "Violence", []) for d in docs)
    again = load_docs("cosalign_test", "Violence", data_dir=local_data_dir)
    assert [d["system"] for d in docs] == [d["system"] for d in again]


def test_seen_and_unseen_groups():
    assert config_group_of("Financial_Crime_and_Theft.Privacy_Violations") == "seen"
    assert config_group_of("Violence.Weapons_Explosives_Arson_and_Illegal_Firearm_Transactions") == "unseen"


def test_cosapien_system_is_the_task_frame_around_the_whole_scenario(local_data_dir, cosapien_configs):
    docs = load_docs("cosapien", "film_production", data_dir=local_data_dir)
    scenario = cosapien_configs["film_production"]
    assert docs and all(d["system"] == frame_scenario(scenario) and d["config"] == scenario for d in docs)
    assert all(d["system"].startswith("Task:\n") and d["system"].endswith("Safety guideline:\n" + scenario)
               for d in docs)
    assert {d["type"] for d in docs} == {"allowed", "disallowed", "partial"}


def _write(tmp_path, benchmark, split, lines):
    folder = tmp_path / benchmark
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "hi", "scenario": "cfg", "type": "maybe"}', "row 2: field 'type' is 'maybe'"),
    ('{"prompt": "", "scenario": "cfg", "type": "allowed"}', "row 2: field 'prompt' must be a non-empty string"),
    ('{"prompt": "hi", "type": "allowed"}', "row 2: field 'scenario'"),
    ('{"prompt": "hi", ', "line 2: not valid JSON"),
])
def test_bad_rows_name_file_row_and_field(tmp_path, line, message):
    good = json.dumps({"prompt": "ok", "scenario": "cfg", "type": "allowed"})
    root = _write(tmp_path, "cosapien", "film_production", [good, line])
    with pytest.raises(CosaError, match=message.replace("(", r"\(").replace("'", "'")) as info:
        load_docs("cosapien", "film_production", data_dir=root)
    assert "film_production.jsonl" in str(info.value)


def test_missing_directory_and_split(tmp_path):
    with pytest.raises(CosaError, match="is not a directory"):
        load_docs("cosapien", "film_production", data_dir=tmp_path / "nope")
    with pytest.raises(CosaError, match="has no cosalign_test/ folder"):
        load_docs("cosalign_test", "safe", data_dir=tmp_path)
    _write(tmp_path, "cosalign_test", "Violence", ['{"prompt": "p", "mode": "exact", "situation": "situation 1"}'])
    with pytest.raises(CosaError, match="no file for split 'safe'"):
        load_docs("cosalign_test", "safe", data_dir=tmp_path)


def test_bad_situation_and_unknown_split(tmp_path):
    root = _write(tmp_path, "cosalign_test", "safe", ['{"prompt": "p", "mode": "exact", "situation": "situation 7"}'])
    with pytest.raises(CosaError, match="field 'situation'"):
        load_docs("cosalign_test", "safe", data_dir=root)
    with pytest.raises(CosaError, match="unknown cosalign_test split 'Bogus'"):
        load_docs("cosalign_test", "Bogus", data_dir=root)


def test_hub_unreachable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("COSA_DATA_DIR", raising=False)
    with pytest.raises(CosaError, match="could not load microsoft/CoSApien.*COSA_DATA_DIR"):
        load_docs("cosapien", "film_production")


def test_a_declared_benchmark_reads_its_own_folder_and_carries_its_identity(tmp_path):
    root = _write(tmp_path, "acme", "support_bot", [json.dumps({"prompt": "hi", "scenario": "be kind",
                                                                   "type": "allowed"})])
    [doc] = load_docs("cosapien", "support_bot", data_dir=root, benchmark="acme")
    assert (doc["benchmark"], doc["schema"], doc["variant"], doc["config_id"]) == \
        ("acme", "cosapien", "0shot", "support_bot")
    with pytest.raises(CosaError, match="benchmark .acme. is not on the hub.*acme/support_bot.jsonl"):
        load_docs("cosapien", "support_bot", benchmark="acme")
    with pytest.raises(CosaError, match="has 0 demonstrations, 5shot needs at least 5.*support_bot"):
        load_docs("cosapien", "support_bot", data_dir=root, benchmark="acme", variant="5shot")
    with pytest.raises(CosaError, match="unknown schema 'faq'"):
        load_docs("faq", "support_bot", data_dir=root, benchmark="acme")


def test_demo_pools_are_config_matched_and_large_enough():
    pools = yaml.safe_load(demos_file().read_text(encoding="utf-8"))
    assert all(len(pools[c]) == 5 for c in COSAPIEN_SPLITS)
    for split in sum(COSALIGN_TEST_SPLITS.values(), ()):
        demos = pools[split]
        assert len(demos) >= 15 and len({d["user"] for d in demos}) == len(demos), split


def test_cosalign_five_shot_draws_its_own_seeded_demos_per_document(local_data_dir):
    pool = yaml.safe_load(demos_file().read_text(encoding="utf-8"))["Violence"]
    docs = load_docs("cosalign_test", "Violence", data_dir=local_data_dir, variant="5shot")
    again = load_docs("cosalign_test", "Violence", data_dir=local_data_dir, variant="5shot")
    reseeded = load_docs("cosalign_test", "Violence", data_dir=local_data_dir, variant="5shot", seed=7)
    assert [d["demos"] for d in docs] == [d["demos"] for d in again]
    assert [d["demos"] for d in docs] != [d["demos"] for d in reseeded]
    for doc in docs:
        assert len(doc["demos"]) == 5 and all(demo in pool for demo in doc["demos"])
        assert len({demo["user"] for demo in doc["demos"]}) == 5
    draws = {tuple(demo["user"] for demo in doc["demos"]) for doc in docs}
    assert len(draws) > 300  # 400 docs, C(15, 5) = 3003 possible draws: nearly all distinct
    assert {d["system"] for d in docs} == {d["system"] for d in load_docs("cosalign_test", "Violence",
                                                                           data_dir=local_data_dir)}


def test_cosapien_five_shot_uses_the_fixed_five_in_order(local_data_dir):
    pool = yaml.safe_load(demos_file().read_text(encoding="utf-8"))["film_production"]
    docs = load_docs("cosapien", "film_production", data_dir=local_data_dir, variant="5shot")
    assert docs and all(d["demos"] == pool for d in docs)
