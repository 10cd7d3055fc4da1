import json

import pytest

from cosa_eval.data import config_group_of, load_docs
from cosa_eval.errors import CosaError


def test_local_cosalign_split_loads_with_rendered_configs(local_data_dir):
    docs = load_docs("cosalign_test", "Violence", data_dir=local_data_dir)
    assert len(docs) == 400
    assert {d["situation"] for d in docs} == {1, 2, 3}
    assert all(d["allowed_categories"] == ["Violence"] and d["config_group"] == "seen" for d in docs)
    again = load_docs("cosalign_test", "Violence", data_dir=local_data_dir)
    assert [d["system"] for d in docs] == [d["system"] for d in again]


def test_seen_and_unseen_groups():
    assert config_group_of("Financial_Crime_and_Theft.Privacy_Violations") == "seen"
    assert config_group_of("Violence.Weapons_Explosives_Arson_and_Illegal_Firearm_Transactions") == "unseen"


def test_cosapien_scenario_becomes_system(local_data_dir, cosapien_configs):
    docs = load_docs("cosapien", "film_production", data_dir=local_data_dir)
    assert docs and all(d["system"] == cosapien_configs["film_production"] for d in docs)
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
