"""The judges/README.md "Adding a backend" example runs as written: its module and its entry point,
installed as a distribution on the path, judge samples through `cosa-eval judge`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from judging_helpers import cosalign_samples, cosapien_samples, write_samples_file

ROOT = Path(__file__).resolve().parents[2]


def _blocks(language: str) -> list[str]:
    text = (ROOT / "judges" / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Adding a backend"):text.index("## Adding a judge")]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def _install_example(site: Path) -> str:
    """Write the README's module and a dist-info from its pyproject (what pip would install)."""
    (module,) = [b for b in _blocks("python") if b.startswith("# my_backend.py")]
    (site / "my_backend.py").write_text(module, encoding="utf-8")
    (pyproject,) = _blocks("toml")
    project = tomllib.loads(pyproject)["project"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = project["entry-points"]
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items())
        for group, points in groups.items()))
    (name,) = groups["cosa_eval.judges"]
    return name


def test_readme_backend_example_judges_through_the_cli(tmp_path, cosalign_rows, cosapien_configs):
    site = tmp_path / "site"
    site.mkdir()
    backend = _install_example(site)
    rubrics = {name: str(ROOT / "judges" / "rubrics" / f"{name}.jinja")
               for name in ("helpfulness", "compliance", "categories")}
    judge = tmp_path / "my-judge" / "judge.yaml"
    judge.parent.mkdir()
    judge.write_text(yaml.safe_dump({"backend": backend, "model": "my-model", "sampling": {},
                                     "concurrency": 2, "rubrics": rubrics}))
    samples = cosalign_samples(cosalign_rows, 0, 4) + cosapien_samples(cosapien_configs)[:4]
    write_samples_file(tmp_path / "run", samples)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "cosa_eval.cli", "judge", str(tmp_path / "run"), "--judge",
                             str(judge), "--output", str(tmp_path / "judged"), "--cache", str(tmp_path / "c.sqlite"),
                             "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for path in (tmp_path / "judged").glob("judged_*.jsonl")
               for line in path.read_text().splitlines()]
    assert len(records) == 8 and all(r["failure"] is None for r in records)
    assert {r["rating"] for r in records} == {0, 3}        # the example's refusal rule and its default
