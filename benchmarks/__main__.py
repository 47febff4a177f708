"""Run every benchmark in its own process and write docs/BENCHMARKS.md.

    python -m benchmarks [--quick | --size S] [--only detection,scoring] [--out docs/BENCHMARKS.md]

Modules: ingest, generate, features (their printed lines are parsed), scaling, detection,
scoring, classifiers, explain, text, dashboard, load (each prints one ``BENCH_JSON`` line with
``--json``). Each runs in a fresh subprocess, so peak memory is per module. A module whose runs
take under 10 s is run three times and its figures are medians. The CPU seconds of each whole
subprocess (with its children) are recorded next to its wall seconds. Comparisons are ratios
measured in the same run.

Sizes: ``--size 1`` (the default, about 35 minutes on 2 cores) ingests, generates and builds
features over ~3M events, runs the pipeline at 0.3M / 1M / 3M events, judges detection over
5 seeds on the generated sets and the ten ADBench sets (benchmarks.detection: ~25 minutes of
it, its sizes fixed), and scores, loads and renders the dashboard over the 1M-event scoring
store; ``--size 3.4`` is the 10M-event reference (the 10M-event scoring
store, ~700k sessions); ``--quick`` is ``--size 0.1`` with every module's quick settings,
single timed runs and a 3,000-user store, each module forked from one process that imported
the stack once, two modules at a time on one compute thread each (about 1 minute: it checks
that everything runs).
The part of docs/BENCHMARKS.md after the line ``MANUAL_MARKER`` (analysis and earlier runs,
written by hand) is kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._zygote import Finished, Job, preload, run_forked, run_lanes

ROOT = Path(__file__).resolve().parents[1]
JSON_PREFIX = "BENCH_JSON "
MODULES = ("ingest", "generate", "features", "scaling", "detection", "scoring", "classifiers",
           "explain", "text", "dashboard", "load")
JSON_MODULES = MODULES[3:]
MANUAL_MARKER = "<!-- Everything below is written by hand; python -m benchmarks keeps it. -->"
PRINTED = {  # modules whose report is their printed tables: (title, what it measures)
    "scaling": ("Scaling", "The same pipeline at three sizes; k is the growth exponent of each "
                "stage's wall seconds between the smallest and the largest size (1 = linear)."),
    "classifiers": ("Classifiers", "Scoring and training speed of the supervised detectors "
                    "(sequences of 64 events) and their quality on the sample data."),
    "explain": ("Explanations", "Faithfulness to injected events and latency per method."),
    "text": ("Review text", "Embedding speed and the text features' signal."),
    "load": ("Many analysts at once", "20 AppTest sessions in one process open Thresholds "
             "together, then move the slider 5 times each with 1-3 s think time."),
}


def text_runs(size: float) -> list[tuple[str, str, list[str]]]:
    """(module, label, arguments) of the parsed modules at ``size`` (1 = ~3M events)."""
    events = max(int(3_000_000 * size), 100_000)
    users = max(int(60_000 * size), 2_000)
    return [
        ("ingest", f"ingest {events:,} events, given ids", ["--events", str(events)]),
        ("ingest", f"ingest {events:,} events, derived ids",
         ["--events", str(events), "--derive-ids"]),
        ("generate", f"generate {users:,} users x 26 days",
         ["--users", str(users), "--days", "26"]),
        ("features", f"features on {events:,} synthetic events",
         ["--events", str(events), "--sequences"]),
    ]


def json_args(module: str, size: float, quick: bool) -> list[str]:
    """Arguments of a JSON module at ``size``: the 10M-event scoring store from size 2 up."""
    small_store = quick or size < 2
    if module == "scaling":
        sizes = (20_000, 50_000, 100_000) if quick else (
            max(int(n * size), 20_000) for n in (300_000, 1_000_000, 3_000_000))
        return ["--events", *map(str, sizes)]
    if module == "explain" and quick:
        return ["--quick", "--users", "300", "--latency-sessions", "3", "--no-shap-reference"]
    if module == "detection":
        # quick: 1 seed at small sizes; otherwise 5 seeds over every set (~25 minutes on 2
        # cores at size 1, the sizes fixed: the ADBench sets are what they are)
        return ["--quick"] if quick or size < 1 else []
    if module == "explain":
        return ["--quick"] if size < 3 else []
    if module == "load" and quick:
        return ["--smoke", "--sessions", "5", "--moves", "2"]
    if module in ("scoring", "dashboard") and quick:
        return ["--smoke"]
    if module in ("scoring", "dashboard", "load"):
        return ["--quick"] if small_store else []
    if module == "classifiers":
        return ["--speed-only"] + (["--quick"] if quick or size < 1 else [])
    if module == "text":
        return ["--users", str(max(int(1000 * size), 200)), "--days", "21"]
    return []


def preload_seconds() -> float:
    started = time.perf_counter()
    preload()
    return time.perf_counter() - started


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


FORK = False  # --quick: fork each module from a process that imported the stack once
QUICK_LANES = (("detection", "scoring", "dashboard", "load"),
               ("explain", "classifiers", "text", "ingest", "scaling", "features", "generate"))
"""--quick runs two modules at a time, in these lanes (about equal time each). The modules that
use the cached benchmark store (scoring, dashboard, load) share a lane: one DuckDB file takes
one process at a time."""
PREFETCHED: dict[Job, Finished] = {}
"""Results of modules already run side by side (--quick), taken by ``run_module``."""


def prefetch_quick(size: float, only: set[str]) -> None:
    """Run every selected module of a quick run in QUICK_LANES, two at a time."""
    jobs: dict[str, list[Job]] = {}
    for module, _, args in text_runs(size):
        jobs.setdefault(module, []).append((f"benchmarks.{module}", tuple(args)))
    for module in JSON_MODULES:
        jobs[module] = [(f"benchmarks.{module}", ("--json", *json_args(module, size, True)))]
    lanes = [[job for module in lane if module in only for job in jobs[module]]
             for lane in QUICK_LANES]
    PREFETCHED.update(run_lanes(lanes, timeout_s=1800, cwd=str(ROOT)))


def run_module(module: str, args: list[str], timeout_s: float) -> dict[str, Any]:
    """One subprocess run: stdout, wall seconds, CPU seconds (its process tree), status."""
    cmd = [sys.executable, "-m", f"benchmarks.{module}", *args]
    print(f"$ {' '.join(cmd[1:])}", flush=True)
    wall, cpu = time.perf_counter(), _children_cpu()
    done = PREFETCHED.pop((f"benchmarks.{module}", tuple(args)), None)
    if done is not None:
        status, stdout, stderr = done.status, done.stdout, done.stderr
        wall, cpu = done.wall_s, done.cpu_s
    elif FORK:
        status, stdout, stderr = run_forked(f"benchmarks.{module}", args, timeout_s, str(ROOT))
        if status == "timeout":
            stderr += f"\ntimed out after {timeout_s:.0f} s"
    else:
        status, stdout, stderr = _run_subprocess(cmd, timeout_s)
    if done is None:
        wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    shown = "\n".join(line for line in stdout.splitlines() if not line.startswith(JSON_PREFIX))
    print(shown, flush=True)
    if status != 0:
        print(stderr[-3000:], file=sys.stderr, flush=True)
    return {"cmd": "python -m " + " ".join(cmd[2:]), "status": status, "stdout": stdout,
            "stderr_tail": stderr[-3000:] if status != 0 else "", "wall_s": wall, "cpu_s": cpu}


def _run_subprocess(cmd: list[str], timeout_s: float) -> tuple[int | str, str, str]:
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
        status, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        status, stdout = "timeout", (exc.stdout or b"").decode() if isinstance(
            exc.stdout, bytes) else (exc.stdout or "")
        stderr = f"timed out after {timeout_s:.0f} s"
    return status, stdout, stderr


_NUM = r"([\d,]+(?:\.\d+)?)"


def _num(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1).replace(",", "")) if match else None


def parse_text(module: str, stdout: str) -> list[dict[str, Any]]:
    """The figures of the modules that print lines (ingest, generate, features)."""
    figures = []
    for line in stdout.splitlines():
        line = line.strip()
        if module == "ingest" and line.startswith("ingest "):
            figures.append({"figure": line.split(" in ")[0], "line": line,
                            "wall_s": _num(rf"in {_NUM} s", line),
                            "cpu_s": _num(rf"{_NUM} s CPU", line),
                            "rate": _num(rf"{_NUM} events/s", line), "unit": "events/s",
                            "peak_mb": _num(rf"peak memory {_NUM} MB", line)})
        elif module == "generate" and line.startswith(("generate ", "write ")):
            figures.append({"figure": line.split(" in ")[0], "line": line,
                            "wall_s": _num(rf"in {_NUM} s", line),
                            "cpu_s": _num(rf"{_NUM} s CPU", line),
                            "rate": _num(rf"{_NUM} events/s", line), "unit": "events/s",
                            "peak_mb": _num(rf"peak memory {_NUM} MB", line)})
        elif module == "features" and line.startswith(("session features:", "event sequences:")):
            figures.append({"figure": line.split(" in ")[0], "line": line,
                            "wall_s": _num(rf"in {_NUM} ?s", line),
                            "cpu_s": _num(rf"{_NUM} CPU-?s", line),
                            "rate": _num(rf"{_NUM} sessions/s", line), "unit": "sessions/s",
                            "peak_mb": _num(rf"peak RSS {_NUM} MB", line)})
    return figures


def _median_figures(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per figure (by position), the median of each number over the runs."""
    out = []
    for i, first in enumerate(runs[0]):
        same = [r[i] for r in runs if len(r) > i]
        merged = dict(first)
        for key in ("wall_s", "cpu_s", "rate", "peak_mb"):
            values = [f[key] for f in same if f.get(key) is not None]
            merged[key] = statistics.median(values) if values else None
        merged["runs"] = len(same)
        out.append(merged)
    return out


def run_text(size: float, only: set[str], quick: bool = False) -> list[dict[str, Any]]:
    """The parsed modules; a run under 10 s is repeated twice more (not with ``quick``)."""
    results = []
    for module, label, args in text_runs(size):
        if module not in only:
            continue
        runs, figures = [], []
        first = run_module(module, args, timeout_s=1800)
        runs.append(first)
        figures.append(parse_text(module, first["stdout"]))
        slowest = max((f["wall_s"] or 0 for f in figures[0]), default=0)
        if first["status"] == 0 and figures[0] and slowest < 10 and not quick:
            for _ in range(2):
                again = run_module(module, args, timeout_s=1800)
                if again["status"] == 0:
                    runs.append(again)
                    figures.append(parse_text(module, again["stdout"]))
        results.append({
            "module": module, "label": label, "cmd": first["cmd"], "status": first["status"],
            "stderr_tail": first["stderr_tail"],
            "process_wall_s": statistics.median(r["wall_s"] for r in runs),
            "process_cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "figures": _median_figures(figures) if figures[0] else [],
        })
    return results


def run_json(module: str, size: float, quick: bool) -> dict[str, Any]:
    args = ["--json", *json_args(module, size, quick)]
    done = run_module(module, args, timeout_s=3600)
    data: dict[str, Any] = {}
    for line in done["stdout"].splitlines():
        if line.startswith(JSON_PREFIX):
            data = json.loads(line[len(JSON_PREFIX):])
    printed = "\n".join(line for line in done["stdout"].splitlines()
                        if not line.startswith(JSON_PREFIX) and "\r" not in line)
    return {"module": module, "cmd": done["cmd"], "status": done["status"],
            "stderr_tail": done["stderr_tail"], "process_wall_s": done["wall_s"],
            "process_cpu_s": done["cpu_s"], "results": data, "printed": printed.strip()}


# ------------------------------------------------------------------------------- the report
def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "duckdb", "streamlit", "pyod", "numpy", "pandas", "plotly",
                 "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_lines() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        import psutil

        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        pass
    try:
        import torch

        device = (f"CUDA: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                  else "no CUDA device: everything ran on the CPU")
    except ImportError:
        device = "torch not importable"
    return [f"{platform.machine()}, {os.cpu_count()} cores ({cpu}){mem}, "
            f"{platform.system()} {platform.release()}", f"torch device: {device}"]


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in row) + " |"
              for row in rows]
    return lines


def _failed(entry: dict[str, Any]) -> list[str]:
    if entry["status"] == 0:
        return []
    return ["", f"**`{entry['cmd']}` failed ({entry['status']}):**", "", "```",
            entry["stderr_tail"].strip()[-1500:], "```"]


def section_text(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for title, module in (("Ingest", "ingest"), ("Sample-data generation", "generate"),
                          ("Feature building", "features")):
        entries = [r for r in results if r["module"] == module]
        if not entries:
            continue
        lines += ["", f"## {title}", ""]
        rows = []
        for e in entries:
            for f in e["figures"]:
                rows.append([f["figure"], _f(f["rate"], 0) + f" {f['unit']}", f["wall_s"],
                             f["cpu_s"], None if f["peak_mb"] is None else int(f["peak_mb"]),
                             f.get("runs", 1)])
        lines += _table(["figure", "rate (wall)", "wall s", "CPU s", "peak MB", "runs"], rows)
        lines += [""] + [f"- `{e['cmd']}`: whole process {e['process_wall_s']:.1f} s wall, "
                         f"{e['process_cpu_s']:.1f} s CPU" for e in entries]
        for e in entries:
            lines += _failed(e)
    return lines


def section_detection(entry: dict[str, Any]) -> list[str]:
    from benchmarks.detection_report import markdown

    res = entry["results"]
    lines = ["", "## Detection quality", ""]
    lines += _failed(entry)
    if not res:
        return lines
    lines += [
        f"`{entry['cmd']}` ({entry['process_wall_s']:.0f} s wall, "
        f"{entry['process_cpu_s']:.0f} s CPU). Generated sets split by time: detectors train "
        "on the sessions before the 70% time point (unsupervised ones with the labelled "
        "anomalies left out; the supervised ones, on the sample data only, learning from those "
        "labels) and are judged on the labelled sessions after it. ADBench sets follow "
        "ADBench's unsupervised protocol (stratified 70/30 split, seed 42, fitted on the "
        "training part with its anomalies, no labels in the store). Anomalyst detectors run "
        "through `core.pipeline.train_model` / `score_model` with their default config and "
        "the seed; each training input is built once per data set (its seconds are given "
        "apart). See `benchmarks/detection.py` for the peers' inputs."]
    lines += markdown(res)
    return lines


def section_scoring(entry: dict[str, Any]) -> list[str]:
    res = entry["results"]
    lines = ["", "## Scoring speed", ""]
    lines += _failed(entry)
    if not res:
        return lines
    store = res["store"]
    lines += [
        f"`{entry['cmd']}` ({entry['process_wall_s']:.0f} s wall, "
        f"{entry['process_cpu_s']:.0f} s CPU). Store: sample data {store['users']:,} users × "
        f"{store['days']} days (seed {store['seed']}): {store['events']:,} events, "
        f"{store['sessions']:,} sessions, {res['n_features']} features; "
        f"{'cached from an earlier run' if store['cached'] else 'built in this run'}. The "
        f"{res.get('matrix_rows', 1_000_000):,}-row matrix is the store's feature rows "
        "repeated to that many rows. Load average "
        f"{res['load_before']:.1f} before, {res['load_after']:.1f} after (2 cores, shared).", ""]
    def mb(value: float | None) -> int | None:
        return None if value is None else round(value)

    rows = [[f["figure"], _f(f["per_s"], 0), f["wall_s"], f["cpu_s"], f.get("runs", 1),
             mb(f.get("peak_rss_mb")), mb(f.get("added_rss_mb"))] for f in res["figures"]]
    lines += _table(["figure", "sessions/s", "wall s", "CPU s", "runs", "peak RSS MB",
                     "+MB during"], rows)
    lines += [""]
    for f in res["figures"]:
        if "write_wall_s" in f:
            lines.append(
                f"- {f['figure']}: features {f['features_wall_s']:.2f} s "
                f"({f['features_cpu_s']:.2f} CPU), load model {f['load_wall_s']:.2f} s, "
                f"score {f['score_wall_s']:.2f} s ({f['score_cpu_s']:.2f} CPU), write and rest "
                f"{f['write_wall_s']:.2f} s ({f['write_cpu_s']:.2f} CPU)")
        if "fit_wall_s" in f:
            lines.append(f"- {f['figure']}: fitted on {f['fit_rows']:,} rows in "
                         f"{f['fit_wall_s']:.1f} s wall / {f['fit_cpu_s']:.1f} s CPU (not "
                         "a quality setting: only for speed)")
    for f in res["figures"]:
        for step in f.get("steps", []):
            lines.append(f"- {f['figure']}, steps as logged by `core.features`: {step}")
    if "dense_autoencoder_compute" in res:
        c = res["dense_autoencoder_compute"]
        lines.append(f"- dense autoencoder: {c['macs_per_row']:,} multiply-adds a row (its "
                     f"Linear layers), so {c['achieved_gflops']:.0f} GFLOP/s achieved; the "
                     f"target needs {c['gflops_needed_for_target']:.0f} GFLOP/s")
    lines += [""] + [f"- ratio {k}: **{v:.1f}×** (same run)" for k, v in res["ratios"].items()]
    lines += ["", "Targets:", ""]
    lines += _table(["target", "measured /s", "target /s", ""],
                    [[k, _f(v["measured"], 0), _f(v["target"], 0),
                      "met" if v["met"] else "**missed**"]
                     for k, v in res["target_check"].items()])
    for name, top in res.get("profiles", {}).items():
        lines += ["", f"Profile of one {name} call (top own time):", "", "```", *top, "```"]
    return lines


def section_dashboard(entry: dict[str, Any]) -> list[str]:
    res = entry["results"]
    lines = ["", "## Dashboard responsiveness", ""]
    lines += _failed(entry)
    if not res:
        return lines
    lines += [
        f"`{entry['cmd']}` ({entry['process_wall_s']:.0f} s wall, "
        f"{entry['process_cpu_s']:.0f} s CPU). Server side with `streamlit.testing.v1.AppTest` "
        f"on the scoring store ({res['store']['sessions']:,} sessions, "
        f"{res['store']['scored_models']} scored models). *AppTest wall* is the whole "
        "`at.run()`, including AppTest parsing the page's output; *script* is the page "
        "script's own thread (the server's work). Browser rendering and transfer are not "
        f"included. Load average {res['load_before']:.1f} before, {res['load_after']:.1f} "
        "after.", ""]
    rows = [[f["figure"], f["wall_ms"], f["cpu_ms"], f["script_ms"], f["script_cpu_ms"]]
            for f in res["figures"]]
    lines += _table(["figure", "AppTest wall ms", "process CPU ms", "script wall ms",
                     "script CPU ms"], [[c if not isinstance(c, float) else round(c)
                                         for c in row] for row in rows])
    lines += ["", "Targets:", ""]
    lines += _table(["target", "AppTest wall ms", "server (script) ms: judged", "target ms", ""],
                    [[k, round(v["measured_ms"]), round(v["script_ms"]), round(v["target_ms"]),
                      "met" if v["met"] else "**missed**"]
                     for k, v in res["target_check"].items()])
    for name, top in res.get("profiles", {}).items():
        lines += ["", f"Profile of {name} (cProfile of the script thread): top cumulative in "
                  "dashboard/ and core/, then top own time anywhere:", "", "```",
                  *top["project_cumulative"], "", *top["own_time"][:10], "```"]
    return lines


def section_printed(entry: dict[str, Any]) -> list[str]:
    """A module reported by its own printed tables (as it prints them when run alone)."""
    title, about = PRINTED[entry["module"]]
    lines = ["", f"## {title}", "", f"`{entry['cmd']}` ({entry['process_wall_s']:.0f} s wall, "
             f"{entry['process_cpu_s']:.0f} s CPU). {about}", ""]
    lines += _failed(entry)
    if entry.get("printed"):
        lines += ["```", entry["printed"], "```"]
    return lines


def targets_summary(json_results: dict[str, dict[str, Any]]) -> list[str]:
    rows = []
    scoring = json_results.get("scoring", {}).get("results") or {}
    for k, v in scoring.get("target_check", {}).items():
        rows.append([f"scoring: {k}", f"{v['measured']:,.0f}/s", f"≥ {v['target']:,}/s",
                     "met" if v["met"] else "**missed**"])
    dash = json_results.get("dashboard", {}).get("results") or {}
    at = f" ({dash['store']['sessions']:,} sessions)" if dash.get("store") else ""
    for k, v in dash.get("target_check", {}).items():
        rows.append([f"dashboard{at}: {k}", f"{v['script_ms']:,.0f} ms server",
                     f"≤ {v['target_ms']:,.0f} ms", "met" if v["met"] else "**missed**"])
    det = json_results.get("detection", {}).get("results") or {}
    leaders = [f"{d['name']}: {d['leader_ap']}" for d in det.get("datasets", [])
               if d.get("group") != "adbench"]
    for t in det.get("targets", []):
        rows.append([f"detection: {t['target']}", t["detail"][:160], "",
                     "met" if t["status"] == "PASS" else "**missed**"])
    lines = ["", "## Summary", ""]
    if rows:
        lines += _table(["target", "measured", "target", ""], rows)
    if leaders:
        lines += ["", "Leader on average precision: " + "; ".join(leaders) + "."]
    return lines


def write_report(path: Path, quick: bool, text: list[dict[str, Any]],
                 json_results: dict[str, dict[str, Any]], started: dt.datetime,
                 seconds: float, note: str = "", size: float = 1.0) -> None:
    vers = versions()
    how = " --quick" if quick else "" if size == 1.0 else f" --size {size:g}"
    lines = [
        "# Benchmarks", "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `python -m benchmarks{how}` in "
        f"{seconds / 60:.1f} minutes"
        f"{' (quick sizes: not the reference figures)' if quick else ''}. Regenerate with the "
        "same command (`--size 3.4` for the 10M-event reference sizes); every module also runs "
        "alone (`python -m benchmarks.<name> [--quick]`)." + note,
        "",
        "Machine: " + "; ".join(machine_lines()) + ".",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
        "",
        "Method: every module runs in its own process (peak memory is that process's; with "
        "`--quick`, a child forked from one process that imported torch, transformers, "
        "DuckDB and Streamlit once, so import time is not in its seconds, and two modules "
        "run at a time, so their wall seconds include sharing the cores). Wall "
        "seconds and CPU seconds (`time.process_time`, all threads of the process) are both "
        "given: the machine is shared, and other jobs inflate wall time far more than CPU "
        "time. Figures of runs under 10 s are medians of 3 runs (scoring: of 9 under 1 s; "
        "single runs with `--quick`, which checks that everything runs rather than measuring "
        "it). Ratios compare figures of the same run.",
    ]
    lines += targets_summary(json_results)
    lines += section_text(text)
    if "detection" in json_results:
        lines += section_detection(json_results["detection"])
    if "scoring" in json_results:
        lines += section_scoring(json_results["scoring"])
    for module in ("scaling", "classifiers", "explain", "text"):
        if module in json_results:
            lines += section_printed(json_results[module])
    if "dashboard" in json_results:
        lines += section_dashboard(json_results["dashboard"])
    if "load" in json_results:
        lines += section_printed(json_results["load"])
    manual = ""
    if path.exists():  # keep the hand-written part
        old = path.read_text(encoding="utf-8")
        if MANUAL_MARKER in old:
            manual = old[old.index(MANUAL_MARKER):]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + ("\n" + manual if manual else ""),
                    encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--size", type=float, default=1.0,
                        help="scale the data sizes (1: ~3M events, about 35 minutes on 2 "
                             "cores; 3.4: the 10M-event reference)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MODULES)}")
    parser.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    parser.add_argument("--raw", default="/tmp/anomalyst-bench/results.json",
                        help="where to keep every result as JSON")
    parser.add_argument("--reuse", metavar="RAW",
                        help="with --only: take the other modules' results from this earlier "
                             "--raw file")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else set(MODULES)
    unknown = only - set(MODULES)
    if unknown:
        parser.error(f"--only must name modules of {MODULES}, got {sorted(unknown)}")
    if args.size <= 0:
        parser.error(f"--size must be positive, got {args.size}")
    size = 0.1 if args.quick else args.size
    wall = time.perf_counter()  # the whole run, the quick run's imports included
    if args.quick:
        global FORK
        FORK = hasattr(os, "fork")
        if FORK:
            print(f"quick: modules run in forked children of this process (imported once, "
                  f"{preload_seconds():.1f} s), two at a time", flush=True)
    started = dt.datetime.now(dt.UTC)
    if FORK:
        prefetch_quick(size, only)
    text = run_text(size, only, args.quick)
    json_results = {m: run_json(m, size, args.quick) for m in JSON_MODULES if m in only}
    seconds = time.perf_counter() - wall
    note = ""
    if args.reuse:  # keep an earlier run's results for the modules not run now
        earlier = json.loads(Path(args.reuse).read_text())
        text = [t for t in earlier["text"] if t["module"] not in only] + text
        json_results = {**{k: v for k, v in earlier["json"].items() if k not in only},
                        **json_results}
        started = dt.datetime.fromisoformat(earlier.get("started", started.isoformat()))
        seconds = earlier.get("seconds", seconds)
        note = (f" {', '.join(sorted(only))} re-measured at {dt.datetime.now(dt.UTC):%H:%M} "
                "UTC; each section gives the load average it ran under.")
    write_report(Path(args.out), args.quick, text, json_results, started, seconds, note, size)
    raw = Path(args.raw)
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"text": text, "json": json_results, "seconds": seconds,
                               "started": started.isoformat()}, indent=1, default=str))
    print(f"\nwrote {args.out} (raw results: {raw}) in {seconds / 60:.1f} minutes")


if __name__ == "__main__":
    main()
