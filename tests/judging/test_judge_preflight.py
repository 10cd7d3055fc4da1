"""What can be known before the first paid judge call is checked before it: duplicate documents, the
judge's name, its rubrics and the output path. Each is one error line, no call made, nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from judging_helpers import cosalign_samples, judge_settings, write_judge, write_samples_file
from cosa_eval.cli import main


def _refused(capsys, server, *argv: str | Path) -> str:
    with pytest.raises(SystemExit) as stop:
        main(["judge", *map(str, argv), "--no-progress"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("cosa-eval: error: ") and err.count("\n") == 1, err
    assert server.request_count == 0, "a judge call was made before the run was refused"
    return err


@pytest.fixture()
def samples_dir(tmp_path, cosalign_rows) -> Path:
    write_samples_file(tmp_path / "run", cosalign_samples(cosalign_rows, 0, 3))
    return tmp_path / "run"


def test_duplicate_document_is_refused_before_any_call(judge_server, cache_path, samples_dir, judge_yaml, capsys):
    file = next(samples_dir.glob("samples_*.jsonl"))
    lines = file.read_text().splitlines()
    file.write_text("\n".join([*lines, lines[0]]) + "\n")
    err = _refused(capsys, judge_server, samples_dir, "--judge", judge_yaml, "--output", samples_dir / "out")
    assert f"{file}: line {len(lines) + 1}" in err and "line 1" in err
    assert not (samples_dir / "out").exists()


def test_the_same_document_in_two_files_is_refused(judge_server, cache_path, tmp_path, cosalign_rows,
                                                    judge_yaml, capsys):
    samples = cosalign_samples(cosalign_rows, 0, 2)
    first = write_samples_file(tmp_path / "one", samples)[0]
    second = write_samples_file(tmp_path / "two", samples)[0]
    err = _refused(capsys, judge_server, first, second, "--judge", judge_yaml, "--output", tmp_path / "out")
    assert str(first) in err and str(second) in err


@pytest.mark.parametrize("name", ["x/../../../escape", "..", "a\\b", "", " padded", "two\nlines", "nul\x00"])
def test_a_judge_name_is_a_name(judge_server, cache_path, samples_dir, tmp_path, capsys, name):
    path = tmp_path / "judges" / "odd" / "judge.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({**judge_settings(), "name": name}), encoding="utf-8")
    err = _refused(capsys, judge_server, samples_dir, "--judge", path)
    assert f"{path}: field 'name'" in err
    assert not list(tmp_path.rglob("escape")) and not list(samples_dir.glob("cosa_judged_*"))


def test_output_a_dangling_symlink(judge_server, cache_path, samples_dir, judge_yaml, tmp_path, capsys):
    for link in (tmp_path / "link", tmp_path / "link2"):
        link.symlink_to(tmp_path / "nowhere" / "deeper")
    for output in (tmp_path / "link", tmp_path / "link2" / "sub"):
        err = _refused(capsys, judge_server, samples_dir, "--judge", judge_yaml, "--output", output)
        assert f"--output {output}" in err


@pytest.mark.parametrize("text, expect", [
    (b"{% include 'other.jinja' %}{{ prompt }}{{ response }}", "include"),
    (b"{% extends 'base.jinja' %}", "extends"),
    (b"{% from 'macros.jinja' import m %}{{ prompt }}", "import"),
    (bytes(range(256)), "not UTF-8"),
    (b"{{ prompt }}\x00{{ response }}", "binary"),
])
def test_a_rubric_is_one_text_file(judge_server, cache_path, samples_dir, tmp_path, capsys, text, expect):
    folder = tmp_path / "judges" / "odd"
    folder.mkdir(parents=True)
    (folder / "helpfulness.jinja").write_bytes(text)
    judge = write_judge(tmp_path / "judges", "odd", rubrics={"helpfulness": "helpfulness.jinja"})
    err = _refused(capsys, judge_server, samples_dir, "--judge", judge, "--output", tmp_path / "out")
    assert str(folder / "helpfulness.jinja") in err and expect in err


def test_a_binary_judge_yaml(judge_server, cache_path, samples_dir, tmp_path, capsys):
    path = tmp_path / "judge.yaml"
    path.write_bytes(bytes(range(256)))
    err = _refused(capsys, judge_server, samples_dir, "--judge", path)
    assert str(path) in err and "UTF-8" in err


def test_resumed_run_still_accepted(judge_server, cache_path, samples_dir, judge_yaml, capsys):
    """The checks refuse nothing ordinary: the same run twice into one folder is a resume."""
    out = samples_dir / "out"
    for _ in range(2):
        assert main(["judge", str(samples_dir), "--judge", str(judge_yaml), "--output", str(out),
                     "--no-progress"]) == 0
    assert json.loads((out / "judge_run.json").read_text())["judge"] == "local"


def test_a_jury_of_judge_files_writes_one_folder_named_by_its_members(judge_server, cache_path, samples_dir,
                                                                      tmp_path):
    members = [write_judge(tmp_path / "judges", name) for name in ("a", "b")]
    assert main(["judge", str(samples_dir), *sum((["--judge", str(m)] for m in members), []), "--no-progress"]) == 0
    assert [p.name for p in samples_dir.iterdir() if p.is_dir()] == ["cosa_judged_jury(a+b)"]
    manifest = json.loads((samples_dir / "cosa_judged_jury(a+b)" / "judge_run.json").read_text())
    assert manifest["judge"] == "jury(a+b)"
