"""Headless Chromium for page tests (Debian's chromium + chromedriver, via selenium).

Use it as a fixture: ``from browser import browser``. Without a browser the test is skipped on a
developer machine and fails on CI (CI set), where .ci/run installs it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1600,1000")


def _missing_browser(reason: str) -> None:
    """Skip on a developer machine without a browser; on CI (CI set) the browser is required."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install chromium, chromium-driver and selenium")
    pytest.skip(reason)


@pytest.fixture()
def browser(tmp_path: Path, monkeypatch):
    try:
        from selenium import webdriver
    except ImportError:
        _missing_browser("selenium is not installed (pip install selenium)")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        _missing_browser("no chromium/chromedriver (apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
