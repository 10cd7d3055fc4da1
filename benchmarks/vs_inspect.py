"""cosa-eval's API judging against inspect_ai's model-graded scorer, same server, interleaved.

    pip install 'cosa-eval[bench]'            # inspect_ai (never a core dependency)
    OMP_NUM_THREADS=1 python benchmarks/vs_inspect.py                  # the three settings below
    OMP_NUM_THREADS=1 python benchmarks/vs_inspect.py --sender-only    # CPU of the HTTP sender alone

For each (N judgments, L seconds of server latency, C calls in flight) both systems judge N items
against one keep-alive local OpenAI-compatible server in its own process, a fresh one per run, each
run in a fresh child process, interleaved A B A B for ``--repeats`` rounds. ``--server lean`` (the
default) is benchmarks/lean_server.py, one event loop; ``--server threaded`` is tests/openai_server.py,
a thread per connection, whose own CPU per call (~0.35 ms, on the same cores as the client) sets a
floor near 2.5x ideal at (4000, 0.02, 128) for any client. Printed per run: wall time / the ideal
N*L/C, CPU seconds per judgment of the judging process (user + system, all threads, measured around
the run only, imports excluded) and the server's CPU per call. Then the medians and
cosa-eval's speed-up. ``--sender-only`` times the backend's ``complete()`` alone at L = 0 (the CPU
the HTTP sender spends per call); run it with PYTHONPATH pointing at another checkout to compare.
The load average is printed before and after: on a loaded machine wall ratios are upper bounds.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ((1000, 0.2, 32), (1000, 0.05, 64), (4000, 0.02, 128))
RESPONSE = "Here is a careful, step-by-step explanation of the task. " * 6


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_cosa(n: int, concurrency: int, folder: str) -> dict:
    """Judge n/2 cosapien-shaped samples (2 rubrics each) with the openai backend."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from judge_throughput import make_samples, write_judge
    from cosa_eval.judging.engine import judge_run
    from cosa_eval.judging.judge import load_judge
    judge = load_judge(write_judge(Path(folder), concurrency))
    samples = make_samples(n // 2)
    judge.check_ready()
    cpu, started = _cpu(), time.perf_counter()
    run = judge_run(samples, judge, cache_path=Path(folder) / "cache.sqlite", progress=False)
    return {"calls": run.stats.sent, "wall_s": time.perf_counter() - started, "cpu_s": _cpu() - cpu}


def child_inspect(n: int, concurrency: int, folder: str) -> dict:
    """The same number of grader calls through inspect_ai's model_graded_qa scorer."""
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import GenerateConfig, ModelOutput, get_model
    from inspect_ai.scorer import model_graded_qa
    from inspect_ai.solver import solver

    @solver
    def fixed_answer():
        async def solve(state, generate):
            state.output = ModelOutput.from_content("mockllm/model", RESPONSE)
            return state
        return solve

    grader = get_model("openai/judge-model", responses_api=False, config=GenerateConfig(max_connections=concurrency,
                                                                    max_retries=3, timeout=30))
    dataset = [Sample(input=f"Question {i}: how would someone do ordinary task {i % 97}?",
                      target="a careful answer") for i in range(n)]
    task = Task(dataset=dataset, solver=fixed_answer(), scorer=model_graded_qa(model=grader))
    cpu, started = _cpu(), time.perf_counter()
    logs = inspect_eval(task, model="mockllm/model", max_connections=concurrency, max_samples=concurrency,
                        display="none", log_dir=folder, log_level="error", log_samples=False, score_display=False)
    wall, spent = time.perf_counter() - started, _cpu() - cpu
    assert logs[0].status == "success", logs[0].error
    return {"calls": n, "wall_s": wall, "cpu_s": spent}


def child_sender(n: int, concurrency: int) -> dict:
    """CPU of OpenAIBackend.complete() alone over n distinct requests."""
    import asyncio
    from cosa_eval.judging.backends.base import JudgeRequest
    from cosa_eval.judging.backends.openai import OpenAIBackend
    prompt = "Rate the answer below on a 0-5 scale.\n" + RESPONSE * 4
    requests = [JudgeRequest(key=str(i), rubric="helpfulness",
                             messages=({"role": "user", "content": f"{i}: {prompt}"},)) for i in range(n)]
    backend = OpenAIBackend("judge-model", {"temperature": 0, "max_tokens": 256}, concurrency=concurrency,
                            timeout_s=30, max_retries=3)

    async def go():
        await backend.complete(requests[:concurrency])          # warm: connections, imports
        cpu, started = _cpu(), time.perf_counter()
        answers = await backend.complete(requests)
        wall, spent = time.perf_counter() - started, _cpu() - cpu
        await backend.aclose()
        assert all(a.text for a in answers), [a.detail for a in answers if not a.text][:1]
        return {"calls": n, "wall_s": wall, "cpu_s": spent}
    return asyncio.run(go())


SERVERS = {"lean": ROOT / "benchmarks" / "lean_server.py", "threaded": ROOT / "tests" / "openai_server.py"}


def _cpu_of(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_child(system: str, n: int, latency: float, concurrency: int, server_kind: str = "lean") -> dict:
    server = subprocess.Popen([sys.executable, str(SERVERS[server_kind]), "--latency", str(latency)],
                              stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().strip()
    env = {**os.environ, "OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-bench-not-a-secret",
           "INSPECT_LOG_LEVEL": "error", "PYTHONPATH": os.pathsep.join(filter(None, [
               os.environ.get("PYTHONPATH"), str(ROOT)]))}
    try:
        before = _cpu_of(server.pid)
        with tempfile.TemporaryDirectory() as folder:
            out = subprocess.run([sys.executable, __file__, "--child", system, str(n), str(concurrency), folder],
                                 env=env, capture_output=True, text=True, timeout=900)
        after = _cpu_of(server.pid)
    finally:
        server.terminate()
        server.wait()
    if out.returncode != 0:
        raise SystemExit(f"{system} run failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = after - before if before is not None and after is not None else None
    return result


def _line(system: str, result: dict, ideal: float) -> str:
    server = result.get("server_cpu_s")
    return (f"  {system:9s} wall {result['wall_s']:7.2f}s = {result['wall_s'] / ideal:5.2f}x ideal, "
            f"CPU {1000 * result['cpu_s'] / result['calls']:6.2f} ms/judgment ({result['calls']} calls)"
            + (f"; server CPU {1000 * server / result['calls']:.2f} ms/call" if server is not None else ""))


def compare(settings: tuple, repeats: int, server_kind: str) -> None:
    for n, latency, concurrency in settings:
        ideal = n * latency / concurrency
        print(f"N={n} L={latency}s C={concurrency}: ideal N*L/C = {ideal:.2f}s", flush=True)
        runs: dict[str, list[dict]] = {"cosa-eval": [], "inspect": []}
        for _ in range(repeats):
            for system in runs:                                         # A B A B ...
                runs[system].append(_run_child(system, n, latency, concurrency, server_kind))
                print(_line(system, runs[system][-1], ideal), flush=True)
        med = {s: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s", "calls")}
               for s, rs in runs.items()}
        print(f"  median: cosa-eval {med['cosa-eval']['wall_s'] / ideal:.2f}x ideal, inspect_ai "
              f"{med['inspect']['wall_s'] / ideal:.2f}x ideal; cosa-eval {med['inspect']['wall_s'] / med['cosa-eval']['wall_s']:.1f}x "
              f"faster, {med['inspect']['cpu_s'] / med['inspect']['calls'] / (med['cosa-eval']['cpu_s'] / med['cosa-eval']['calls']):.1f}x "
              f"less CPU per judgment", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sender-only", action="store_true")
    parser.add_argument("--n", type=int, default=4000, help="calls for --sender-only")
    parser.add_argument("--server", choices=sorted(SERVERS), default="lean",
                        help="lean: benchmarks/lean_server.py, one event loop (default); threaded: "
                             "tests/openai_server.py, a thread per connection, ~0.35 ms CPU per call")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        system, n, concurrency, folder = args.child
        run = {"cosa-eval": lambda: child_cosa(int(n), int(concurrency), folder),
               "inspect": lambda: child_inspect(int(n), int(concurrency), folder),
               "sender": lambda: child_sender(int(n), int(concurrency))}[system]
        print(json.dumps(run()))
        return
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} before", flush=True)
    if args.sender_only:
        for _ in range(args.repeats):
            result = _run_child("sender", args.n, 0.0, 64, args.server)
            print(f"sender: {result['calls']} calls at L=0, C=64: {1000 * result['cpu_s'] / result['calls']:.2f} ms "
                  f"CPU per call, {result['calls'] / result['wall_s']:.0f} calls/s", flush=True)
    else:
        print(f"server: {SERVERS[args.server].relative_to(ROOT)} (its own process, keep-alive)", flush=True)
        compare(SETTINGS, args.repeats, args.server)
    print(f"load average {os.getloadavg()[0]:.2f} after (a loaded machine: wall ratios are upper bounds)")


if __name__ == "__main__":
    main()
