"""The leaderboard page in a real headless Chromium (Debian's chromium + chromedriver, via selenium)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from browser import browser  # noqa: F401 (the headless Chromium fixture)
from scoring_harness import leaderboard, results_with_runs

@pytest.fixture()
def page(tmp_path: Path) -> Path:
    results = results_with_runs(tmp_path, "model-b")
    assert leaderboard("render", "--results", results, "--out", tmp_path / "site") == 0
    return tmp_path / "site" / "leaderboard.html"


def _models(driver, table_id: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' > tbody > tr.run'))"
        ".map(r => r.children[0].textContent.split(' [')[0]);", table_id)      # the name, less its marks


def _header(driver, table_id: str, title: str):
    from selenium.webdriver.common.by import By

    heads = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} > thead th")
    return next(h for h in heads if h.text.replace("▲", "").replace("▼", "").strip() == title)


def test_page_sorts_expands_and_renders(browser, page, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert [r for r in resources if not r.startswith(("file:", "data:"))] == []

    table = "board-cosalign_test"
    initial = _models(browser, table)
    assert initial[:2] == ["model-b", "model-a"] and "L3.1-8B-Inst+CoSAlign" in initial
    # CoSA-Score, first click: best first; rows without an overall score stay last in paper order
    _header(browser, table, "CoSA-Score [95% CI]").click()
    assert _models(browser, table)[:5] == ["model-b", "model-a", "GPT-4o-mini", "GPT-4o-mini+ICA",
                                           "GPT-4o-mini+ICA-5shot"]
    assert _models(browser, table)[5] == "L3.1-8B-Inst+ICA"
    _header(browser, table, "CoSA-Score [95% CI]").click()  # second click: ascending
    assert _models(browser, table)[:5] == ["GPT-4o-mini+ICA-5shot", "GPT-4o-mini+ICA", "GPT-4o-mini", "model-a",
                                           "model-b"]
    assert _header(browser, table, "CoSA-Score [95% CI]").get_attribute("aria-sort") == "ascending"
    _header(browser, table, "Seen").click()  # seen: model-b 0.5, L3.1-8B-Inst+CoSAlign 0.408, ...
    assert _models(browser, table)[:3] == ["model-b", "L3.1-8B-Inst+CoSAlign", "GPT-4o-mini+CoSAlign (SFT only)"]
    assert sorted(_models(browser, table)) == sorted(initial)

    # click model-a's row: its own per-config detail opens below it (details move with their rows)
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, f"#{table} > tbody > tr.run")
               if r.find_element(By.TAG_NAME, "td").text.split(" [")[0] == "model-a")
    detail = row.find_element(By.XPATH, "following-sibling::tr[1]")
    assert "detail" in detail.get_attribute("class") and not detail.is_displayed()
    row.click()
    assert detail.is_displayed() and row.get_attribute("aria-expanded") == "true"
    text = detail.text
    # Violence config of run A: 0.1 with violations Other Harms and Privacy Violations (test_metrics.py)
    assert "Violence" in text and "0.100 [" in text and "Other Harms=1;Privacy Violations=1" in text
    assert "Sexual_Misconduct_Exploitation_and_Infidelity" in text and "api_error=1" in text
    screenshot = tmp_path / "leaderboard.png"
    browser.execute_script("arguments[0].scrollIntoView({block: 'start', inline: 'start'});", row)
    assert browser.save_screenshot(str(screenshot))
    if os.environ.get("COSA_SCREENSHOT_DIR"):  # keep it for a human look
        shutil.copy(screenshot, Path(os.environ["COSA_SCREENSHOT_DIR"]) / screenshot.name)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    row.click()
    assert not detail.is_displayed() and row.get_attribute("aria-expanded") == "false"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


DEMO_WARNING = "DEMO JUDGE: these scores are NOT comparable with published CoSA-Scores"
DEMO_SAMPLE = "the project's own invented demo sample in the CoSApien schema - not CoSApien"
SIZES = {"wide": (1400, 1000), "narrow": (420, 900)}


@pytest.fixture()
def demo_site(tmp_path: Path) -> Path:
    """A results folder with the paper's rows, measured runs and the notice the demo writes."""
    from cosa_eval.scoring.notice import Notice, write_notice
    results = results_with_runs(tmp_path)
    write_notice(results, Notice(warning=DEMO_WARNING, samples={"cosapien": DEMO_SAMPLE},
                                 ratings={"cosapien": [1.61, 1.6, 1.63, 1.62], "cosalign_test": [0, 2.1, 4.8]}))
    assert leaderboard("render", "--results", results, "--out", tmp_path / "site") == 0
    return tmp_path / "site"


def _keep(screenshot: Path) -> None:
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    if os.environ.get("COSA_SCREENSHOT_DIR"):  # keep it for a human look
        shutil.copy(screenshot, Path(os.environ["COSA_SCREENSHOT_DIR"]) / screenshot.name)


@pytest.mark.parametrize("size", SIZES)
def test_demo_page_and_plot_carry_the_warning_at_any_width(browser, demo_site, tmp_path, size):
    width, height = SIZES[size]
    browser.set_window_size(width, height)
    browser.get((demo_site / "leaderboard.html").as_uri())
    warning = browser.execute_script(
        "var w = document.querySelector('.warning'); var r = w.getBoundingClientRect();"
        "return {text: w.textContent, top: r.top, left: r.left, right: r.right, shown: r.height > 0};")
    assert warning["text"] == DEMO_WARNING and warning["shown"]
    viewport = browser.execute_script("return document.documentElement.clientWidth;")
    assert warning["top"] < 250 and warning["left"] >= 0 and warning["right"] <= viewport   # seen first, not cut
    assert browser.execute_script("return document.documentElement.scrollWidth;") <= viewport  # tables scroll inside
    headings = browser.execute_script("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent);")
    assert f"cosapien: {DEMO_SAMPLE}" in headings and "CoSApien (human-authored, 5 configs)" not in headings
    bins = browser.execute_script("""
        var found = {};
        document.querySelectorAll('section').forEach(function (s) {
          found[s.querySelector('h2').textContent.split(':')[0]] = Array.from(s.querySelectorAll('.bin')).map(
            function (b) { return [b.querySelector('.label').textContent,
                                   b.querySelector('.bar').getBoundingClientRect().height]; });
        });
        return found;""")
    cosapien = bins["cosapien"]
    assert [label for label, _ in cosapien] == ["0", "1", "2", "3", "4", "5"]
    assert [h > 1 for _, h in cosapien] == [False, False, True, False, False, False]  # every rating ~1.6: one bar
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    page_shot = tmp_path / f"demo-page-{size}.png"
    assert browser.save_screenshot(str(page_shot))
    _keep(page_shot)

    browser.get((demo_site / "leaderboard.png").as_uri())
    image = browser.execute_script("var i = document.images[0]; return [i.naturalWidth, i.naturalHeight, i.complete];")
    assert image[2] and image[0] >= 1200 and image[1] >= 900
    plot_shot = tmp_path / f"demo-plot-{size}.png"
    assert browser.save_screenshot(str(plot_shot))
    _keep(plot_shot)
