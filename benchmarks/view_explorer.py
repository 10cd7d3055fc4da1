"""Time to interactive of ``cosa-eval view`` for a 6,400-response run, in headless Chromium.

    python benchmarks/view_explorer.py                 # 3,200 CoSAlign-Test prompts x 2 variants
    python benchmarks/view_explorer.py --loads 5 --response-chars 4000

Builds a real judged run without HTTP: lm_eval-style samples files, the judge cache filled with the
answers the test server would give (each behind a rationale of ``--rationale-chars``), then
``cosa-eval judge`` (every call cached) and ``cosa-eval view``. Prints the page size and build
time, then per load the time from navigation start to the explorer being ready (its data parsed,
first rows drawn, handlers bound) and the time one filter, one search and opening one response
take, with the load average.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import CHROMEDRIVER, CHROMIUM, FLAGS  # noqa: E402
from conftest import SHARED_COSALIGN  # noqa: E402
from judging.judging_helpers import cosalign_samples, write_judge, write_samples_file  # noqa: E402
from openai_server import rubric_answer  # noqa: E402

from cosa_eval.judging.backends.base import JudgeResponse  # noqa: E402
from cosa_eval.judging.cache import JudgeCache  # noqa: E402
from cosa_eval.judging.cli import judge_folder  # noqa: E402
from cosa_eval.judging.judge import load_judge, sample_item  # noqa: E402
from cosa_eval.view.cli import write_explorer  # noqa: E402

FILLER = "The response goes through the request step by step, with the detail a reader would need. "
REASONING = "Weighing what was asked against what the answer gives, and what the config allows. "


def make_run(folder: Path, response_chars: int) -> tuple[Path, list]:
    """6,400 samples: the CoSAlign-Test reconstruction's 3,200 prompts, 0-shot and 5-shot."""
    rows = [json.loads(line) for line in SHARED_COSALIGN.read_text(encoding="utf-8").splitlines()]
    base = cosalign_samples(rows)
    samples = []
    for variant in ("0shot", "5shot"):
        for sample in base:
            length = response_chars // 2 + (sample.doc_id * 37) % response_chars
            response = (sample.response + " " + FILLER * (length // len(FILLER) + 1))[:length]
            samples.append(dataclasses.replace(sample, variant=variant, response=response,
                                               task=sample.task.replace("cosalign_test", f"cosalign_test_{variant}")))
    run = folder / "run"
    write_samples_file(run, samples)
    (run / "results_2026-01-01T00-00-00.000000.json").write_text(json.dumps(
        {"model_name": "bench-model", "config": {"model_args": ""}, "lm_eval_version": "0.4.9"}), encoding="utf-8")
    return run, samples


def fill_cache(cache_path: Path, judge_path: Path, samples: list, rationale_chars: int) -> None:
    """The answers the test server gives, each after a rationale, stored without any HTTP."""
    judge = load_judge(judge_path)
    reasoning = (REASONING * (rationale_chars // len(REASONING) + 1))[:rationale_chars]
    with JudgeCache(cache_path) as cache:
        answers = []
        for sample in samples:
            for rubric in judge.rubric_hashes(sample):
                request = judge.request(rubric, sample_item(sample))
                text = reasoning + "\n" + rubric_answer(list(request.messages))
                answers.append((request.key, rubric, JudgeResponse(text=text, input_tokens=700, output_tokens=300)))
        cache.put_many(answers)


def measure(page: Path, loads: int) -> None:
    """Load the page ``loads`` times in a fresh headless Chromium; print the timings."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            for load in range(1, loads + 1):
                before = os.getloadavg()[0]
                driver.get(page.as_uri())
                timing = driver.execute_script("""
                    var t = {ready: window.cosaView.ready}, f = document.getElementById('f-outcome');
                    var s = performance.now(); f.value = 'helpful+unsafe'; f.dispatchEvent(new Event('change'));
                    t.filter = performance.now() - s; t.shown = document.querySelector('.count').textContent;
                    var q = document.getElementById('search'); s = performance.now();
                    q.value = 'steal'; q.dispatchEvent(new Event('input'));
                    t.search = performance.now() - s; t.found = document.querySelector('.count').textContent;
                    s = performance.now(); document.querySelector('#rows .row:not([hidden])').click();
                    t.open = performance.now() - s; return t;""")
                print(f"load {load}: ready {timing['ready']:.0f} ms after navigation start; outcome filter "
                      f"{timing['filter']:.0f} ms ({timing['shown']}); first search {timing['search']:.0f} ms "
                      f"({timing['found']}); open a response {timing['open']:.0f} ms; load average "
                      f"{before:.2f} -> {os.getloadavg()[0]:.2f}")
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--response-chars", type=int, default=2000, help="mean response length (default 2000)")
    parser.add_argument("--rationale-chars", type=int, default=600, help="judge rationale length (default 600)")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-secret")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run, samples = make_run(folder, args.response_chars)
        judge = write_judge(folder / "judges", "bench")
        cache = folder / "judge_cache.sqlite"
        fill_cache(cache, judge, samples, args.rationale_chars)
        judge_folder([str(run)], str(judge), folder / "judged", cache=cache, progress=False)
        started = time.perf_counter()
        page = write_explorer([folder / "judged"], folder / "explorer.html", cache=cache)
        built = time.perf_counter() - started
        print(f"{len(samples):,} responses; cosa-eval view wrote {page.stat().st_size / 1e6:.1f} MB in {built:.1f} s "
              f"(load average {os.getloadavg()[0]:.2f})")
        measure(page, args.loads)


if __name__ == "__main__":
    main()
