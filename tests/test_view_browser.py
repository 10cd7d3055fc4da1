"""The explorer in headless Chromium: filters, search, sorting, keys, the disagreements view, the
adjudication round trip through ``judge-agreement --labels``, and hostile responses shown as text."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from browser import browser  # noqa: F401 (the headless Chromium fixture)
from cosa_eval.cli import main
from view_runs import HUGE_CHARS, LATE, XSS, build_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cosapien_configs, cosalign_rows) -> dict[str, Path]:
    return build_runs(tmp_path_factory.mktemp("view"), cosapien_configs, cosalign_rows)


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page") / "explorer.html"
    folders = [str(runs[name]) for name in ("a-alpha", "a-beta", "a-alpha-reference", "b-alpha")]
    assert main(["view", *folders, "--cache", str(runs["cache"]), "--out", str(out)]) == 0
    return out


def data_of(page: Path) -> dict:
    found = re.search(r'<script type="application/json" id="cosa-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(found.group(1))


def opened(driver, page: Path):
    driver.get(page.as_uri())
    assert driver.execute_script("return document.body.dataset.ready") == "1"
    return driver


def count(driver) -> str:
    return driver.execute_script("return document.querySelector('.count').textContent")


def choose(driver, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select
    Select(driver.find_element("id", select_id)).select_by_value(value)


def shown_ids(driver) -> list[int]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#rows .row')).filter(r => r.getClientRects().length)"
        ".sort((a, b) => a.dataset.pos - b.dataset.pos).map(r => +r.dataset.id);")


def severe(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def keep(driver, tmp_path: Path, name: str) -> None:
    import os
    import shutil
    shot = tmp_path / name
    assert driver.save_screenshot(str(shot)) and shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("COSA_SCREENSHOT_DIR"):       # keep it for a human look
        shutil.copy(shot, Path(os.environ["COSA_SCREENSHOT_DIR"]) / name)


def test_filters_search_sorting_and_keys(browser, page, tmp_path):
    from selenium.webdriver.common.keys import Keys
    data = data_of(page)
    rows = data["rows"]
    driver = opened(browser, page)
    assert count(driver) == f"{len(rows)} of {len(rows)} responses"
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert resources == []

    choose(driver, "f-outcome", "invalid")
    invalid = [r["id"] for r in rows if any(v["outcome"] == "invalid" for v in r["v"].values())]
    assert sorted(shown_ids(driver)) == invalid
    choose(driver, "f-outcome", "refused")     # refused includes over-refusals
    refused = [r["id"] for r in rows if any(v["outcome"] in ("refused", "over-refusal") for v in r["v"].values())]
    assert sorted(shown_ids(driver)) == refused
    choose(driver, "f-outcome", "")
    model_b = next(run["key"] for run in data["runs"] if run["model"] == "org/model-b")
    choose(driver, "f-model", model_b)
    assert sorted(shown_ids(driver)) == [r["id"] for r in rows if r["model"] == "org/model-b"]
    choose(driver, "f-config", "film_production")
    assert sorted(shown_ids(driver)) == [r["id"] for r in rows if r["model"] == "org/model-b"
                                         and r["config_id"] == "film_production"]
    choose(driver, "f-model", "")
    choose(driver, "f-config", "")
    choose(driver, "f-benchmark", "cosalign_test")
    assert sorted(shown_ids(driver)) == [r["id"] for r in rows if r["benchmark"] == "cosalign_test"]
    choose(driver, "f-benchmark", "")

    search = driver.find_element("id", "search")
    search.send_keys(LATE.lower())
    assert shown_ids(driver) == [r["id"] for r in rows if LATE in r["response"]]
    search.clear()
    search.send_keys("would rather not put a number")      # a judge's rationale is searched too
    assert sorted(shown_ids(driver)) == [r["id"] for r in rows if any(
        "would rather not put a number" in t for v in r["v"].values() for ts in v["texts"].values() for t in ts)]
    search.clear()
    search.send_keys(" ")
    search.send_keys(Keys.BACKSPACE)

    header = next(h for h in driver.find_elements("css selector", ".row.head .cell") if h.text == "beta: rating")
    header.click()
    ratings = [rows[i]["v"].get("beta", {}).get("rating") for i in shown_ids(driver)]
    present = [r for r in ratings if r is not None]
    assert present == sorted(present) and ratings[: len(present)] == present
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    ids = shown_ids(driver)

    body = driver.find_element("id", "rows")
    driver.execute_script("arguments[0].focus();", body)
    body.send_keys("jjj")
    body.send_keys(Keys.ENTER)
    third = rows[ids[2]]
    assert driver.find_element("id", "detail").is_displayed()
    title = driver.find_element("css selector", ".detail-head h2").text
    assert title.endswith(third["sample_id"])
    body.send_keys("k")
    assert driver.find_element("css selector", ".detail-head h2").text.endswith(rows[ids[1]]["sample_id"])
    keep(driver, tmp_path, "explorer-rows.png")
    body.send_keys(Keys.ESCAPE)
    assert not driver.find_element("id", "detail").is_displayed()
    assert severe(driver) == []


def test_detail_shows_config_and_each_judges_rationale(browser, page):
    rows = data_of(page)["rows"]
    driver = opened(browser, page)
    late = next(r for r in rows if LATE in r["response"])
    driver.find_element("id", "search").send_keys(LATE.lower())
    driver.find_element("css selector", "#rows .row:not([hidden])").click()
    text = driver.find_element("id", "detail").text
    assert "Judge: alpha" in text and "Judge: beta" in text and "Judge: alpha · parser reference" in text
    assert "helpfulness (attempt 1)" in text and "I would rather not put a number on this one." in text
    assert "A rationale that mentions [[NO]] and [[YES]] before deciding." in text
    config = data_of(page)["configs"][late["config"]]
    shown = driver.execute_script("return Array.from(document.querySelectorAll('#detail pre')).pop().textContent")
    assert shown == config


def test_disagreements_view_side_by_side(browser, page, tmp_path):
    data = data_of(page)
    driver = opened(browser, page)
    driver.find_element("id", "tab-dis").click()
    groups = data["disagreements"]
    assert count(driver) == f"{len(groups)} of {len(groups)} disagreements"
    choose(driver, "f-dkind", "runs")
    cards = driver.find_elements("css selector", "#disagreements .group")
    runs_groups = [g for g in groups if "runs" in g["kinds"]]
    assert len(cards) == len(runs_groups) > 0
    heads = cards[0].find_elements("css selector", "table.side tr:first-child th")
    assert [h.text.splitlines()[0] for h in heads[1:]] == ["org/model-a", "org/model-b"]
    choose(driver, "f-dkind", "parsers")
    card = driver.find_elements("css selector", "#disagreements .group")[0]
    verdicts = {tr.find_element("tag name", "th").text: tr.find_element("tag name", "td").text.split(" rating")[0]
                for tr in card.find_elements("css selector", "table.side tr")[1:]}
    assert set(verdicts) == {"alpha", "beta", "alpha · parser reference"}
    assert verdicts["alpha"] != verdicts["alpha · parser reference"]
    keep(driver, tmp_path, "explorer-disagreements.png")
    card.find_element("css selector", "button.open").click()
    assert driver.find_element("css selector", ".detail-head h2").text.endswith(
        card.find_element("tag name", "h3").text)
    assert severe(driver) == []


def _mark(driver, row_id: int, *, flip: bool) -> None:
    """Open a row, take judge alpha's verdict, flip its compliance when asked, add a note, save."""
    from selenium.webdriver.support.ui import Select
    driver.execute_script("document.getElementById('search').value = ''; "
                          "document.getElementById('search').dispatchEvent(new Event('input'));")
    position = driver.execute_script(
        "var rows = Array.from(document.querySelectorAll('#rows .row:not([hidden])'));"
        "return rows.find(r => +r.dataset.id === arguments[0]).dataset.pos;", row_id)
    driver.execute_script("document.querySelector('#rows .row[data-pos=\"' + arguments[0] + '\"]').click();", position)
    take = next(b for b in driver.find_elements("css selector", "#detail .buttons button") if b.text == "take alpha’s verdict")
    take.click()
    if flip:
        compliant = Select(driver.find_element("id", "mark-compliant"))
        compliant.select_by_visible_text("no" if compliant.first_selected_option.text == "yes" else "yes")
    driver.find_element("id", "mark-note").send_keys(f"checked, row {row_id}, \"quoted\"")
    driver.find_element("id", "mark-save").click()


def test_adjudication_round_trip(browser, page, runs, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait
    data = data_of(page)
    candidates = [r for r in data["rows"] if r["model"] == "org/model-a" and r["schema"] == "cosapien"
                  and r["v"]["alpha"]["outcome"] != "invalid" and len(r["response"]) < 10_000]
    safe = [r for r in candidates if r["v"]["alpha"]["is_safe"]]
    unsafe = [r for r in candidates if not r["v"]["alpha"]["is_safe"]]
    assert len(safe) + len(unsafe) >= 5 and safe and unsafe
    rest = [r for r in candidates if r is not safe[0] and r is not unsafe[0]]
    chosen = [safe[0], unsafe[0], *rest[:3]]                       # the first two get flipped
    driver = opened(browser, page)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.find_element("id", "annotator").send_keys("ann1")
    for number, row in enumerate(chosen):
        _mark(driver, row["id"], flip=number < 2)
    driver.refresh()                                           # marks survive a reload
    choose(driver, "f-marked", "marked")
    assert sorted(shown_ids(driver)) == sorted(r["id"] for r in chosen)
    keep(driver, tmp_path, "explorer-marks.png")

    driver.find_element("id", "export").click()
    WebDriverWait(driver, 30).until(lambda _: list(downloads.glob("labels_*.csv")))
    (labels,) = downloads.glob("labels_*.csv")
    table = list(csv.DictReader(io.StringIO(labels.read_text(encoding="utf-8"))))
    assert [r["sample_id"] for r in table] == sorted(r["sample_id"] for r in chosen)
    assert all(r["annotator"] == "ann1" and r["note"].endswith('"quoted"') for r in table)

    out = tmp_path / "agreement"
    assert main(["judge-agreement", str(runs["a-alpha"]), "--labels", str(labels), "--out", str(out),
                 "--n-resamples", "10"]) == 0
    rows = list(csv.DictReader((out / "agreement.csv").open(encoding="utf-8")))
    safe = next(r for r in rows if r["label"] == "is_safe" and r["config"] == "overall" and r["benchmark"] == "cosapien/0shot")
    judge = [r["v"]["alpha"]["is_safe"] for r in chosen]
    human = [not j if number < 2 else j for number, j in enumerate(judge)]
    assert int(safe["n"]) == len(chosen)
    assert float(safe["agreement"]) == pytest.approx(3 / 5)
    assert float(safe["kappa"]) == pytest.approx(cohen_kappa(judge, human), abs=1e-6)
    rating = next(r for r in rows if r["label"] == "rating" and r["config"] == "overall" and r["benchmark"] == "cosapien/0shot")
    assert float(rating["agreement"]) == 1.0

    driver.execute_script("localStorage.clear();")
    driver.refresh()
    choose(driver, "f-marked", "marked")
    assert shown_ids(driver) == []
    driver.find_element("id", "import").send_keys(str(labels))
    WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "mark-status").text.startswith("loaded"))
    assert driver.find_element("id", "mark-status").text == f"loaded {len(chosen)} marks"
    assert sorted(shown_ids(driver)) == sorted(r["id"] for r in chosen)
    _open_id(driver, chosen[0]["id"])
    assert driver.find_element("id", "mark-note").get_attribute("value") == f"checked, row {chosen[0]['id']}, \"quoted\""
    assert severe(driver) == []


def _open_id(driver, row_id: int) -> None:
    driver.execute_script("Array.from(document.querySelectorAll('#rows .row:not([hidden])'))"
                          ".find(r => +r.dataset.id === arguments[0]).click();", row_id)


def cohen_kappa(a: list[bool], b: list[bool]) -> float:
    """Cohen's kappa of two raters over two levels."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    expected = sum((a.count(level) / n) * (b.count(level) / n) for level in (True, False))
    return (observed - expected) / (1 - expected)


def test_hostile_responses_render_as_text(browser, page, tmp_path):
    rows = data_of(page)["rows"]
    driver = opened(browser, page)
    title = driver.title
    xss = next(r for r in rows if r["response"] == XSS)
    _open_id(driver, xss["id"])
    texts = driver.execute_script("return Array.from(document.querySelectorAll('#detail pre')).map(p => p.textContent)")
    assert XSS in texts and "<i>prompt</i> " + XSS in texts
    assert driver.title == title
    assert driver.execute_script("return document.querySelectorAll('img, b, i, #detail style').length") == 0
    cell = driver.execute_script("return Array.from(document.querySelectorAll('#rows .row:not([hidden])'))"
                                 ".find(r => +r.dataset.id === arguments[0]).children[6].textContent;", xss["id"])
    assert cell.startswith("</script><script>document.title=")

    huge = next(r for r in rows if len(r["response"]) == HUGE_CHARS)
    _open_id(driver, huge["id"])
    more = driver.find_element("css selector", "#detail button.more")
    assert more.text == f"show all {HUGE_CHARS:,} characters"
    more.click()
    assert driver.execute_script(
        "return Math.max(...Array.from(document.querySelectorAll('#detail pre')).map(p => p.textContent.length))") == HUGE_CHARS
    driver.find_element("id", "search").send_keys("story line")      # the page still filters
    assert shown_ids(driver) == [huge["id"]]
    keep(driver, tmp_path, "explorer-hostile.png")
    assert driver.title == title and severe(driver) == []
