"""The real CoSA data beside the project (COSA_SHARED_DIR or ../shared) loads through the data layer
as the benchmarks declare it. Without that data these tests skip, saying how to get it; on CI they fail."""
from __future__ import annotations

from collections import Counter

from invented_data import write_local_data
from cosa_eval.data import COSALIGN_TEST_SPLITS, COSAPIEN_SPLITS, config_group_of, load_docs
from cosa_eval.taxonomy import categories_of_split


def test_the_cosalign_test_reconstruction_is_8_configs_of_400(real_cosalign_rows, real_cosapien_configs,
                                                              tmp_path):
    data = write_local_data(tmp_path, real_cosalign_rows, real_cosapien_configs)
    assert Counter(row["split"] for row in real_cosalign_rows) == {
        split: 400 for split in sum(COSALIGN_TEST_SPLITS.values(), ())}
    for split in sum(COSALIGN_TEST_SPLITS.values(), ()):
        docs = load_docs("cosalign_test", split, data_dir=data)
        assert len(docs) == 400
        assert all(tuple(d["allowed_categories"]) == categories_of_split(split)
                   and d["config_group"] == config_group_of(split) for d in docs)


def test_the_five_cosapien_configs_frame_the_project_prompts(real_cosalign_rows, real_cosapien_configs, tmp_path):
    assert set(real_cosapien_configs) == set(COSAPIEN_SPLITS)
    data = write_local_data(tmp_path, real_cosalign_rows[:1], real_cosapien_configs)
    for split, scenario in real_cosapien_configs.items():
        docs = load_docs("cosapien", split, data_dir=data)
        assert docs and all(d["config"] == scenario and d["system"].endswith(scenario) for d in docs)
