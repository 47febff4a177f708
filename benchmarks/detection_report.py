"""Summaries, targets and tables of ``benchmarks.detection``.

The targets (issue 19, "Benchmarks") are checked and printed as PASS/FAIL lines, never
asserted. Every comparison is between means over seeds of the same run:

- ``adbench median``: the best of our label-free methods (unsupervised detectors and the
  ensemble) by median ROC-AUC over the ADBench sets >= the best of PyOD IForest, ECOD and
  AutoEncoder by the same median;
- ``adbench vs IForest``: no ADBench set where our default is more than 0.05 ROC-AUC below
  PyOD IForest, checked for the ensemble and for our best single detector (by median);
- on every data set: autoencoder >= pyod AutoEncoder (AP), isolation_forest >= pyod IForest
  (AP), vae >= pyod VAE (AP; issue 25), ecdf_tails >= pyod ECOD (AP), our best unsupervised
  detector >= pyod AutoEncoder (AP), the ensemble >= its best member (AP on the part after
  the ensemble's own train end, where its weights saw no labels), and F1 at each of our
  models' label-free default threshold >= 80% of its oracle best F1.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

TARGET_PEERS = ("pyod IForest", "pyod ECOD", "pyod AutoEncoder")
FAMILY = (("autoencoder", "pyod AutoEncoder"), ("isolation_forest", "pyod IForest"),
          ("vae", "pyod VAE"),  # issue #25
          ("ecdf_tails", "pyod ECOD"))
ROC_MARGIN = 0.05
F1_SHARE = 0.8
OURS = ("anomalyst", "supervised", "ensemble")
SHORT = {"autoencoder": "AE", "isolation_forest": "IF", "zscore": "z",
         "sequence_autoencoder": "seqAE", "transformer_mlm": "mlm", "ensemble": "ens",
         "vae": "VAE", "sequence_vae": "seqVAE", "ecdf_tails": "ecdf",
         "pyod IForest": "pyIF", "pyod ECOD": "pyECOD", "pyod AutoEncoder": "pyAE",
         "pyod VAE": "pyVAE", "pyod DeepSVDD": "pySVDD", "bigram surprisal": "bigram"}


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not np.isnan(v)]
    return float(statistics.fmean(values)) if values else float("nan")


def _std(values: list[float]) -> float:
    values = [v for v in values if v is not None and not np.isnan(v)]
    return float(statistics.stdev(values)) if len(values) > 1 else 0.0 if values else float("nan")


def summarise(slot: dict[str, Any]) -> dict[str, Any]:
    """A method's per-seed entries with their means and spreads added."""
    runs = slot["per_seed"]
    out = dict(slot)
    for key in ("roc_auc", "ap", "recall_at_1pct_fpr", "best_f1", "f1_default", "fit_s",
                "fit_cpu_s", "score_s", "score_cpu_s"):
        values = [r[key] for r in runs if r.get(key) is not None]
        out[f"{key}_mean"] = _mean(values)
        out[f"{key}_std"] = _std(values)
    out["n_seeds"] = len(runs)
    f1d, best = out["f1_default_mean"], out["best_f1_mean"]
    out["f1_ratio"] = f1d / best if not np.isnan(f1d) and best and not np.isnan(best) else (
        float("nan"))
    sources = sorted({r["threshold_source"] for r in runs if r.get("threshold_source")})
    out["threshold_source"] = "; ".join(sources) if sources else None
    rules = sorted({r["threshold_rule"] for r in runs if r.get("threshold_rule")})
    out["threshold_rule"] = ", ".join(rules) if rules else None
    scenarios = sorted({s for r in runs for s in r.get("recall_by_scenario", {})})
    out["recall_by_scenario_mean"] = {
        s: _mean([r["recall_by_scenario"].get(s) for r in runs if "recall_by_scenario" in r])
        for s in scenarios}
    held = [r["holdout"] for r in runs if r.get("holdout", {}).get("ap") is not None]
    if held:
        members = sorted({m for h in held for m in h.get("members_ap", {})})
        out["holdout_ap_mean"] = _mean([h["ap"] for h in held])
        out["holdout_members_ap_mean"] = {m: _mean([h["members_ap"].get(m) for h in held
                                                    if m in h["members_ap"]]) for m in members}
        out["holdout_n"] = held[0]["n"]
        out["holdout_n_anomalous"] = held[0]["n_anomalous"]
    if runs and "members" in runs[0]:
        out["members"] = runs[0]["members"]
    return out


# ------------------------------------------------------------------------------------ targets
def _by_method(ds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["method"]: m for m in ds["methods"] if m.get("n_seeds")}


def _value(method: dict[str, Any] | None, key: str) -> float:
    if method is None:
        return float("nan")
    value = method.get(f"{key}_mean")
    return float("nan") if value is None else float(value)


def _label_free(method: dict[str, Any]) -> bool:
    return method["kind"] == "anomalyst" or (method["kind"] == "ensemble"
                                             and method.get("label_free", True))


def _at_least(a: float, b: float) -> bool:
    return not np.isnan(a) and not np.isnan(b) and a >= b - 1e-12


def _line(ok: bool, target: str, detail: str) -> dict[str, Any]:
    return {"status": "PASS" if ok else "FAIL", "target": target, "detail": detail}


def adbench_medians(datasets: list[dict[str, Any]], key: str = "roc_auc") -> dict[str, float]:
    """Per method: the median over the ADBench sets of its mean ``key`` (sets it ran on)."""
    per: dict[str, list[float]] = {}
    for ds in datasets:
        for name, method in _by_method(ds).items():
            value = _value(method, key)
            if not np.isnan(value):
                per.setdefault(name, []).append(value)
    return {name: float(np.median(values)) for name, values in per.items()}


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS/FAIL lines: {"status", "target", "detail"}."""
    lines: list[dict[str, Any]] = []
    every = results["datasets"]
    adbench = [d for d in every if d.get("group") == "adbench"]
    if adbench:
        lines += _adbench_targets(adbench)
    for ours, peer in FAMILY:
        lines.append(_pairwise(every, f"{ours} >= {peer} on AP", lambda ds, o=ours: o,
                               lambda ds, p=peer: p))
    lines.append(_pairwise(every, "our best unsupervised detector >= pyod AutoEncoder on AP",
                           _best_single_ap, lambda ds: "pyod AutoEncoder"))
    lines.append(_ensemble_target(every))
    lines += _f1_targets(results, every)
    return lines


def _adbench_targets(adbench: list[dict[str, Any]]) -> list[dict[str, Any]]:
    medians = adbench_medians(adbench)
    kinds = {m["method"]: m for ds in adbench for m in ds["methods"]}
    ours = {n: v for n, v in medians.items() if n in kinds and _label_free(kinds[n])}
    singles = {n: v for n, v in ours.items() if kinds[n]["kind"] == "anomalyst"}
    peers = {n: v for n, v in medians.items() if n in TARGET_PEERS}
    lines = []
    n_sets = len(adbench)
    if ours and peers:
        best_ours = max(ours, key=lambda n: ours[n])
        best_peer = max(peers, key=lambda n: peers[n])
        lines.append(_line(ours[best_ours] >= peers[best_peer] - 1e-12,
                           f"adbench median ROC-AUC ({n_sets} sets): our best >= best PyOD peer",
                           f"{best_ours} {ours[best_ours]:.3f} vs {best_peer} "
                           f"{peers[best_peer]:.3f}"))
    else:
        lines.append(_line(False, "adbench median ROC-AUC: our best >= best PyOD peer",
                           "missing results: " + ("ours" if not ours else "peers")))
    best_single = max(singles, key=lambda n: singles[n]) if singles else None
    for label, name in (("ensemble", "ensemble"), ("best single detector", best_single)):
        target = f"adbench: {label} never > {ROC_MARGIN} ROC-AUC below pyod IForest"
        if name is None:
            lines.append(_line(False, target, "no single detector ran"))
            continue
        below, missing = [], []
        for ds in adbench:
            methods = _by_method(ds)
            a, b = _value(methods.get(name), "roc_auc"), _value(methods.get("pyod IForest"),
                                                                "roc_auc")
            if np.isnan(a) or np.isnan(b):
                missing.append(ds["name"])
            elif a < b - ROC_MARGIN:
                below.append(f"{ds['name']} {a:.3f} vs {b:.3f}")
        detail = f"{name}: " + ("; ".join(below) if below else "no set below")
        if missing:
            detail += f"; missing on {', '.join(missing)}"
        lines.append(_line(not below and not missing, target, detail))
    return lines


def _best_single_ap(ds: dict[str, Any]) -> str | None:
    singles = [m for m in ds["methods"] if m["kind"] == "anomalyst" and m.get("n_seeds")
               and not np.isnan(_value(m, "ap"))]
    return max(singles, key=lambda m: _value(m, "ap"))["method"] if singles else None


def _pairwise(every: list[dict[str, Any]], target: str, ours: Any, peer: Any) -> dict[str, Any]:
    """``ours(ds)`` >= ``peer(ds)`` on mean AP on every data set."""
    failing, missing, checked = [], [], 0
    for ds in every:
        methods = _by_method(ds)
        o, p = ours(ds), peer(ds)
        a, b = _value(methods.get(o) if o else None, "ap"), _value(methods.get(p), "ap")
        if np.isnan(a) or np.isnan(b):
            missing.append(ds["name"])
            continue
        checked += 1
        if not _at_least(a, b):
            failing.append(f"{ds['name']} {o} {a:.3f} < {b:.3f}")
    detail = (f"failing on {len(failing)}/{checked}: " + "; ".join(failing)) if failing else (
        f"holds on {checked}/{checked}")
    if missing:
        detail += f"; missing on {', '.join(missing)}"
    return _line(not failing and not missing, target, detail)


def _ensemble_target(every: list[dict[str, Any]]) -> dict[str, Any]:
    failing, missing, checked = [], [], 0
    for ds in every:
        ens = _by_method(ds).get("ensemble")
        members = (ens or {}).get("holdout_members_ap_mean") or {}
        if ens is None or np.isnan(ens.get("holdout_ap_mean", float("nan"))) or not members:
            missing.append(ds["name"])
            continue
        checked += 1
        best = max(members, key=lambda m: members[m])
        if not _at_least(ens["holdout_ap_mean"], members[best]):
            failing.append(f"{ds['name']} {ens['holdout_ap_mean']:.3f} < {best} "
                           f"{members[best]:.3f}")
    detail = (f"failing on {len(failing)}/{checked}: " + "; ".join(failing)) if failing else (
        f"holds on {checked}/{checked}")
    if missing:
        detail += f"; missing on {', '.join(missing)}"
    return _line(not failing and not missing, "ensemble >= its best member on AP (its held-out "
                 "part)", detail)


def _f1_targets(results: dict[str, Any], every: list[dict[str, Any]]) -> list[dict[str, Any]]:
    target = f"F1 at the label-free default >= {F1_SHARE:.0%} of the oracle best F1"
    if not results.get("operating_point"):
        return [_line(False, target, "no label-free operating point: "
                      "core.pipeline.operating_point is not importable (reported as –)")]
    lines = []
    for ds in every:
        failing, ok = [], 0
        for m in ds["methods"]:
            if m["kind"] not in OURS or not m.get("n_seeds"):
                continue
            ratio = m.get("f1_ratio", float("nan"))
            if ratio is not None and not np.isnan(ratio) and ratio >= F1_SHARE:
                ok += 1
            else:
                failing.append(f"{m['method']} {fmt_num(ratio)}")
        detail = f"{ok} met" + (f"; below: {', '.join(failing)}" if failing else "")
        lines.append(_line(not failing, f"{target} on {ds['name']}", detail))
    return lines


# ------------------------------------------------------------------------------------- tables
def fmt_num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pm(method: dict[str, Any], key: str) -> str:
    mean = method.get(f"{key}_mean")
    if mean is None or np.isnan(mean):
        return "–"
    if method.get("n_seeds", 0) > 1:
        return f"{mean:.3f}±{method[f'{key}_std']:.3f}"
    return f"{mean:.3f}"


COLUMNS = ("method", "ROC-AUC", "AP", "R@1%FPR", "F1@default", "best F1", "ratio", "threshold",
           "fit s", "score s", "seeds")


def dataset_rows(ds: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in ds["methods"]:
        name = m["method"] + (" (supervised)" if m["kind"] == "supervised" else "")
        if m["kind"] == "ensemble" and m.get("holdout_ap_mean") is not None:
            name += f" [held-out AP {m['holdout_ap_mean']:.3f}]"
        if not m.get("n_seeds"):
            rows.append([name, "failed", *["–"] * (len(COLUMNS) - 2)])
            continue
        ours = m["kind"] in OURS
        rows.append([name, pm(m, "roc_auc"), pm(m, "ap"), pm(m, "recall_at_1pct_fpr"),
                     pm(m, "f1_default") if ours else "", pm(m, "best_f1"),
                     fmt_num(m.get("f1_ratio"), 2) if ours else "",
                     (m.get("threshold_rule") or _short_source(m.get("threshold_source")))
                     if ours else "",
                     fmt_num(m.get("fit_s_mean"), 2), fmt_num(m.get("score_s_mean"), 2),
                     str(m["n_seeds"])])
    return rows


def _short_source(source: str | None, width: int = 30) -> str:
    """A threshold's source as the table shows it: up to its first parenthesis, cut to
    ``width`` (the whole text is in the JSON)."""
    if not source:
        return "–"
    text = source.split(" (")[0]
    return text if len(text) <= width else text[: width - 1] + "…"


def text_table(header: list[str] | tuple[str, ...], rows: list[list[str]]) -> list[str]:
    cells = [list(header)] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def adbench_grid(adbench: list[dict[str, Any]], key: str) -> tuple[list[str], list[list[str]]]:
    """Rows per set (+ the median), one column per method: the mean ``key``."""
    names: list[str] = []
    for ds in adbench:
        for m in ds["methods"]:
            if m["method"] not in names:
                names.append(m["method"])
    medians = adbench_medians(adbench, key)
    header = ["set", *[SHORT.get(n, n) for n in names]]
    rows = []
    for ds in adbench:
        methods = _by_method(ds)
        rows.append([ds["name"], *[fmt_num(_value(methods.get(n), key)) for n in names]])
    rows.append(["median", *[fmt_num(medians.get(n)) for n in names]])
    return header, rows


def _description(ds: dict[str, Any]) -> str:
    return (f"{ds['name']}: {ds['description']}; {ds['events']:,} events, "
            f"{ds['sessions']:,} sessions; test {ds['n_test']:,} sessions "
            f"({ds['n_test_anomalous']:,} anomalous), train {ds['n_train']:,}; built in "
            f"{ds['build_wall_s']:.1f} s, session features in "
            f"{ds['inputs']['features']['wall_s']:.1f} s"
            + (f", sequences in {ds['inputs']['sequences']['wall_s']:.1f} s"
               if "sequences" in ds["inputs"] else ""))


def _scenario_lines(ds: dict[str, Any]) -> list[str]:
    scenarios = sorted({s for m in ds["methods"] for s in m.get("recall_by_scenario_mean", {})})
    if len(scenarios) <= 1:
        return []
    rows = [[m["method"], *[fmt_num(m["recall_by_scenario_mean"].get(s), 2) for s in scenarios]]
            for m in ds["methods"] if m.get("n_seeds")]
    return ["recall at 1% FPR by scenario:", *text_table(["method", *scenarios], rows)]


def _errors(ds: dict[str, Any]) -> list[str]:
    lines = [f"  {m['method']} failed: {e}" for m in ds["methods"] for e in m.get("errors", [])]
    for m in ds["methods"]:
        failed = sorted({r["operating_point_error"] for r in m["per_seed"]
                         if r.get("operating_point_error")})
        lines += [f"  {m['method']}: no operating point: {e}" for e in failed]
    return lines


def header_lines(results: dict[str, Any]) -> list[str]:
    s = results["sizes"]
    seeds = results["seeds"]
    return [
        f"machine: {results['machine']}",
        f"seeds: {len(seeds)} ({', '.join(map(str, seeds))}); sizes: sample {s['users']:,} users x "
        f"{s['days']} days (seed {s['data_seed']}), Markov {s['markov_sessions']:,} sessions, "
        f"stress sets {s['stress_sessions']:,} sessions, ADBench capped at "
        f"{s['adbench_cap']:,} rows" + (" (quick: 1 seed, fewer epochs; it checks that "
                                        "everything runs, its figures are not results)"
                                        if results["quick"] else ""),
        "our detectors: default config + seed"
        + (" (epochs 3 / 2 sequence)" if results["quick"] else "")
        + f"; PyOD deep peers {results['peer_epochs']} epochs, batch {results['peer_batch']}; "
        "label-free operating point: "
        + ("core.pipeline.operating_point" if results["operating_point"]
           else "not available (–)"),
        "mean±std over seeds; R@1%FPR: recall at 1% FPR; ratio = F1@default / best F1; fit and "
        "score seconds are means per run (wall). On ADBench the peers see the set's own "
        "features (min-max scaled on the training part); elsewhere our session features, "
        "robust-standardised.",
    ]


def target_lines(results: dict[str, Any]) -> list[str]:
    return [f"{t['status']}  {t['target']}: {t['detail']}" for t in results.get("targets", [])]


def print_report(results: dict[str, Any]) -> None:
    print("\n".join(header_lines(results)))
    adbench = [d for d in results["datasets"] if d.get("group") == "adbench"]
    for ds in results["datasets"]:
        print(f"\n== {_description(ds)}")
        for note in ds.get("notes", []):
            print(f"   note: {note}")
        print("\n".join(text_table(COLUMNS, dataset_rows(ds))))
        scen = _scenario_lines(ds)
        if scen and ds.get("group") != "adbench":
            print("\n".join(scen))
        for line in _errors(ds):
            print(line)
        print(f"leader on AP: {ds['leader_ap']}")
    if adbench:
        for key, title in (("roc_auc", "ROC-AUC"), ("ap", "AP")):
            header, rows = adbench_grid(adbench, key)
            print(f"\n== ADBench {title} per set (mean over seeds)")
            print("\n".join(text_table(header, rows)))
        print("   " + ", ".join(f"{v}={k}" for k, v in SHORT.items()))
    print("\n== targets")
    print("\n".join(target_lines(results)))
    print(f"\nrun {results['wall_s'] / 60:.1f} min, peak memory {results['peak_rss_mb']:,.0f} MB")


def markdown(results: dict[str, Any]) -> list[str]:
    """The same report for docs/BENCHMARKS.md (used by ``python -m benchmarks``)."""
    lines = ["", *[f"{line}  " for line in header_lines(results)], ""]
    adbench = [d for d in results["datasets"] if d.get("group") == "adbench"]
    lines += ["Targets:", "", "```", *target_lines(results), "```", ""]
    for ds in results["datasets"]:
        if ds.get("group") == "adbench":
            continue
        lines += [f"### {ds['name']}", "", _description(ds) + ".", "", "```",
                  *text_table(COLUMNS, dataset_rows(ds)), *_scenario_lines(ds), *_errors(ds),
                  "```", "", f"**Leader on AP: {ds['leader_ap']}.**", ""]
    if adbench:
        lines += ["### ADBench", ""]
        for key, title in (("roc_auc", "ROC-AUC"), ("ap", "AP")):
            header, rows = adbench_grid(adbench, key)
            lines += [f"{title} per set (mean over seeds):", "", "```", *text_table(header, rows),
                      "```", ""]
        lines += [", ".join(f"{v}={k}" for k, v in SHORT.items()), "", "Per set:", "", "```"]
        for ds in adbench:
            lines += [_description(ds), *text_table(COLUMNS, dataset_rows(ds)), *_errors(ds), ""]
        lines += ["```", ""]
    return lines
