"""The leaderboard files are byte-identical to the ones the code wrote when the tables were weighed
for pandas (``tests/scoring/golden/``; the HTML page, mostly inline assets and the paper's rows, as its
SHA-256), and any valid table reads back and writes again byte for byte.

Regenerate the golden files (only for an intended change of output, and say so in the commit):

    PYTHONPATH=. python -c "import sys; sys.path.insert(0, 'tests/scoring'); import test_golden; test_golden.regenerate()"
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from scoring_fixtures import SAFE, VIOLENCE, cosapien_run, run_a, run_b, write_run
from scoring_harness import REPO_RESULTS, leaderboard, snapshot
from cosa_eval.scoring import leaderboard as board_module, tables
from cosa_eval.types import VARIANTS

GOLDEN = Path(__file__).with_name("golden")
TEXT_FILES = ("leaderboard.csv", "leaderboard_by_config.csv", "leaderboard.md")
PAGE = "leaderboard.html"
VERSION = "0.0.0+golden"          # the rows' cosa_eval_version, so a release does not change the files


def build(tmp_path: Path) -> Path:
    """Every kind of change the tables take: the shipped folder, two models and a second benchmark,
    a name a spreadsheet would run and markdown would format, a cascade-oracle row beside a standard
    one, and a partial re-add (fewer configs, same key) that replaces a row and drops its stale
    configs; then a render."""
    results = Path(shutil.copytree(REPO_RESULTS, tmp_path / "results"))
    run_1 = write_run(tmp_path / "run-a", run_a() + cosapien_run(), "model-a", "pretrained=a,dtype=bf16")
    run_2 = write_run(tmp_path / "run-b", run_b(), "model-b", "pretrained=b")
    partial = [r for r in run_a() if r.sample.config_id in (SAFE, VIOLENCE)]
    run_3 = write_run(tmp_path / "run-a-partial", partial, "model-a", "pretrained=a,dtype=bf16", date=1_710_000_000)
    steps = [(run_1, run_2), (run_2, "--cascade-oracle"), (run_2, "--model", "=cmd|x *y* <b>"), (run_3,)]
    for step in steps:
        assert leaderboard("add", *step, "--results", results, "--min-valid-rate", "0", "--allow-partial") == 0
    assert leaderboard("render", "--results", results) == 0
    return results


@pytest.fixture()
def built(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(board_module, "__version__", VERSION)
    return build(tmp_path)


@pytest.mark.parametrize("name", TEXT_FILES)
def test_leaderboard_files_are_byte_identical_to_the_golden_ones(built, name):
    assert (built / name).read_bytes() == (GOLDEN / name).read_bytes(), \
        f"{name} differs from tests/scoring/golden/{name}"


def test_leaderboard_page_is_byte_identical_to_the_golden_one(built):
    assert _digest(built / PAGE) == (GOLDEN / f"{PAGE}.sha256").read_text(encoding="utf-8"), \
        f"{PAGE} differs from the page whose digest is tests/scoring/golden/{PAGE}.sha256"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() + "\n"


def test_a_second_render_and_a_repeated_add_change_no_byte(built, tmp_path):
    """The PNG is compared with itself: matplotlib writes no timestamp, so a re-render is identical."""
    before = snapshot(built)
    assert leaderboard("render", "--results", built) == 0
    assert snapshot(built) == before
    run_2 = write_run(tmp_path / "run-b-again", run_b(), "model-b", "pretrained=b")
    assert leaderboard("add", run_2, "--results", built, "--min-valid-rate", "0", "--allow-partial") == 0
    assert leaderboard("render", "--results", built) == 0
    assert snapshot(built) == before


def regenerate() -> None:
    """Write the golden files from the current code (see the module docstring)."""
    import tempfile

    board_module.__version__ = VERSION
    with tempfile.TemporaryDirectory() as tmp:
        results = build(Path(tmp))
        GOLDEN.mkdir(exist_ok=True)
        for name in TEXT_FILES:
            shutil.copyfile(results / name, GOLDEN / name)
        (GOLDEN / f"{PAGE}.sha256").write_text(_digest(results / PAGE), encoding="utf-8")


# Any valid row: text as a UTF-8 CSV cell can hold it (NUL aside), numbers finite, required cells set.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
NUMBER = st.floats(allow_nan=False, allow_infinity=False, width=64) | st.integers(-10**6, 10**6)


def _cell(column: str, measured: bool) -> st.SearchStrategy:
    if column in tables.CHOICES:
        return st.sampled_from(tables.CHOICES[column])
    required = column in tables.REQUIRED or (measured and column in tables.REQUIRED_MEASURED)
    if column in tables.TEXT_COLUMNS:
        return TEXT.filter(bool) if required else TEXT
    if column in tables.INT_COLUMNS:
        values = st.integers(0, 10**9)
    else:
        values = NUMBER
    return values if required else values | st.none()


@st.composite
def _rows(draw, columns: tuple[str, ...]) -> list[dict]:
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        measured = draw(st.booleans())
        row = {c: draw(_cell(c, measured)) for c in columns if c != "source"}
        rows.append({**row, "source": "measured" if measured else "reported",
                     "variant": draw(st.sampled_from(VARIANTS))})
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.parametrize("columns, key", [(tables.LEADERBOARD_COLUMNS, tables.KEY),
                                          (tables.BY_CONFIG_COLUMNS, tables.BY_CONFIG_KEY)])
def test_write_read_write_is_byte_identical(tmp_path_factory, data, columns, key):
    rows = data.draw(_rows(columns))
    unique = list({tuple(tables.format_value(r[k]) for k in key): r for r in rows}.values())
    path = tmp_path_factory.mktemp("table") / "table.csv"
    tables.write_tables({path: (columns, tables.sort_rows([_texts(r) for r in unique], key))})
    written = path.read_bytes()
    read = tables.read_table(path, columns, key)
    tables.write_tables({path: (columns, tables.sort_rows(read, key))})
    assert path.read_bytes() == written


def _texts(row: dict) -> dict[str, str]:
    """A row as :func:`tables.sort_rows` takes it (text cells; numbers as the writer formats them)."""
    return {c: tables.format_value(v) for c, v in row.items()}
