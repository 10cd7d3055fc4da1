"""The training README's worked run, run as written: its bash block, from the checkout's root, with
MODEL set to the tiny random Llama (the README's default is SmolLM2, minutes of CPU training)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_block() -> str:
    text = (ROOT / "cosa_eval" / "train" / "README.md").read_text(encoding="utf-8")
    section = text.split("## Worked run")[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_readme_walkthrough_runs_as_written(tmp_path, tiny_model_dir):
    env = {**os.environ, "MODEL": str(tiny_model_dir), "TMPDIR": str(tmp_path), "COSA_CACHE_DIR": str(tmp_path / "c"),
           "COSA_NO_PROGRESS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("OPENAI_API_KEY", None)
    process = subprocess.Popen(["bash", "-euc", readme_block()], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=900)
    finally:                                         # the block's background server, should a step have failed
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    assert process.returncode == 0, output[-4000:]
    [scratch] = [p for p in tmp_path.iterdir() if p.name.startswith("tmp.")]
    assert "synthesize:" in output and "prompts labelled outside" not in output    # --categories all keeps all 10
    pairs = [json.loads(line) for line in (scratch / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen_score"] < p["rejected_score"] for p in pairs)
    for folder in ("sft", "dpo"):
        manifest = json.loads((scratch / folder / "cosa_manifest.json").read_text())
        assert manifest["counts"]["complete"] is True
        assert (scratch / folder / "model.safetensors").is_file() and (scratch / folder / "chat_template.jinja").is_file()
