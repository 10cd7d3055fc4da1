"""Property tests of the samples and judged-records readers: any text or JSON value in any field is
either read exactly or refused with one ``CosaError`` naming the file (and line); never a traceback."""
from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from cosa_eval.errors import CosaError
from cosa_eval.records import read_judged, write_judged
from cosa_eval.samples import read_samples
from cosa_eval.taxonomy import ALL_CATEGORIES
from cosa_eval.types import JudgedRecord, Sample

TEXT = st.text(st.characters(exclude_categories=[]), max_size=30)   # lone surrogates included
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=8)
DOC = {"benchmark": "cosalign_test", "schema": "cosalign_test", "variant": "0shot", "config_id": "Violence",
       "config_group": "seen", "prompt": "p", "system": "c", "allowed_categories": ["Violence"], "situation": 1}
SAMPLE_FIELDS = sorted(DOC) + ["doc_id", "resps", "filtered_resps"]
FILE = "samples_cosalign_test_violence_2026-01-01T00-00-00.000000.jsonl"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _sample_row(overrides: dict) -> dict:
    row = {"doc_id": 0, "doc": dict(DOC), "resps": [["r"]], "filtered_resps": ["r"]}
    for name, value in overrides.items():
        (row["doc"] if name in DOC else row)[name] = value
    return row


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", errors="surrogatepass")
    return path


def _read_or_refuse(read, path: Path):
    try:
        return read([path])
    except CosaError as error:
        message = str(error)
        assert str(path) in message and "\n" not in message, message
        return None


@SETTINGS
@given(overrides=st.dictionaries(st.sampled_from(SAMPLE_FIELDS), JSON, max_size=3), ensure_ascii=st.booleans())
def test_samples_reader_takes_any_field_value(tmp_path_factory, overrides, ensure_ascii):
    folder = tmp_path_factory.mktemp("samples")
    line = json.dumps(_sample_row(overrides), ensure_ascii=ensure_ascii)
    path = _write(folder / FILE, [line])
    samples = _read_or_refuse(read_samples, path)
    if samples is not None:
        sample = samples[0]
        assert (sample.prompt, sample.config) == (_sample_row(overrides)["doc"]["prompt"],
                                                  _sample_row(overrides)["doc"]["system"])


@SETTINGS
@given(prompt=TEXT, response=TEXT, config_id=TEXT, judge=TEXT)
def test_judged_records_round_trip_any_text(tmp_path_factory, prompt, response, config_id, judge):
    """Text a record can hold is written and read back identical; text no file can hold is refused."""
    sample = Sample(task="cosalign_test_x", benchmark="cosalign_test", variant="0shot", config_id=config_id,
                    config_group="seen", doc_id=3, prompt=prompt, config="c", response=response,
                    situation=1, allowed_categories=("Violence",), schema="cosalign_test")
    record = JudgedRecord(sample=sample, judge=judge or "j", rubric_hashes={"helpfulness": "h"}, rating=4,
                          categories={c: False for c in ALL_CATEGORIES})
    path = tmp_path_factory.mktemp("judged") / "judged_cosalign_test_x.jsonl"
    try:
        write_judged(path, [record])
    except CosaError as error:
        assert str(path) in str(error)
        return
    read = _read_or_refuse(read_judged, path)
    if read is not None:
        assert read == [record]


@SETTINGS
@given(overrides=st.dictionaries(st.sampled_from(sorted(JudgedRecord(
    sample=Sample(task="t", benchmark="cosapien", variant="0shot", config_id="c", config_group="g", doc_id=0,
                  prompt="p", config="c", response="r", schema="cosapien"),
    judge="j", rubric_hashes={}).to_dict())), JSON, max_size=3))
def test_judged_reader_takes_any_field_value(tmp_path_factory, overrides):
    sample = Sample(task="cosapien_c", benchmark="cosapien", variant="0shot", config_id="c", config_group="g",
                    doc_id=0, prompt="p", config="c", response="r", prompt_type="allowed", schema="cosapien")
    row = {**JudgedRecord(sample=sample, judge="j", rubric_hashes={"h": "1"}, rating=3, is_compliant=True).to_dict(),
           **overrides}
    path = _write(tmp_path_factory.mktemp("judged") / "judged_cosapien_c.jsonl", [json.dumps(row)])
    _read_or_refuse(read_judged, path)


@SETTINGS
@given(lines=st.lists(TEXT, max_size=4))
def test_any_text_lines(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("lines")
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    _read_or_refuse(read_samples, _write(folder / FILE, lines))
    _read_or_refuse(read_judged, _write(folder / "judged_x.jsonl", lines))
