"""Real-data benchmark: BUS-BRA (Brazil, 4 scanners) -> BrEaST-Lesions-USG (Poland), one command.

    python benchmarks/breast_us/run_all.py            # everything; writes benchmarks/breast_us/RESULTS.md
    python benchmarks/breast_us/run_all.py --collate  # only rebuild RESULTS.md from finished runs

Steps (every number of RESULTS.md comes from here):

1. ``cohorts.py`` builds the cohort tables from ../shared/data.
2. ``sonorad run`` on four study files, each in a fresh process whose wall time per stage and peak
   memory are recorded: ``bus_bra_to_breast_baseline.yaml`` (PyRadiomics original features +
   LASSO-LR), ``bus_bra_to_breast_study1.yaml`` (Combined = BI-RADS + Rad-score + DL-score, every
   zoo model), ``bus_bra_to_breast_study2.yaml`` (US, Radiomics, DL, RadiomicsDL, Combined
   families x every zoo model, and a fine-tuned EfficientNet-Lite0), ``bus_bra_to_breast_dl_lite1/2.yaml``
   (the DL family on frozen EfficientNet-Lite1 / Lite2 features) and ``polish_study1.yaml``
   (the study-1 design inside the Polish cohort). Outputs: benchmarks/_work/breast_us/results/.
3. ``loso_combat.py``: leave-one-scanner-out inside BUS-BRA, and the external AUC with and
   without ComBat, from the study-1 run's feature tables.
4. RESULTS.md: external AUCs with DeLong CIs, DeLong tests of the chosen sonorad model against
   each baseline (paired, the same 252 lesions), external calibration, cost, LOSO, ComBat and the
   Polish design. The text of ``interpretation.md`` closes the file.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = ROOT / "benchmarks" / "_work" / "breast_us"
RESULTS = WORK / "results"
STUDIES = {"baseline": "bus_bra_to_breast_baseline.yaml", "study1": "bus_bra_to_breast_study1.yaml",
           "study2": "bus_bra_to_breast_study2.yaml", "dl_lite1": "bus_bra_to_breast_dl_lite1.yaml",
           "dl_lite2": "bus_bra_to_breast_dl_lite2.yaml", "polish": "polish_study1.yaml"}
#: Runs whose models compete for "the chosen sonorad model" (by training CV AUC only).
CANDIDATE_RUNS = ("study1", "study2", "dl_lite1", "dl_lite2")


# -- running ------------------------------------------------------------------------------------
def run_one(name: str, jobs: int) -> None:
    """Child process: run one study and write its cost (wall time, stages, peak memory)."""
    from sonorad.runner import run_study

    out = RESULTS / name
    t0 = time.perf_counter()
    run = run_study(HERE / STUDIES[name], out, jobs=jobs, progress=False)
    cost = {"study": STUDIES[name], "commit": _commit(), "wall_s": round(time.perf_counter() - t0, 1),
            "stages_s": run.timings,
            "peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_rss_workers_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}
    path = out / "cost.json"
    if run.reused and path.exists():
        print(f"{name}: saved models reused ({', '.join(run.reused)}); keeping the cost of the run that fitted them")
        return
    path.write_text(json.dumps(cost, indent=2))


def _commit() -> str:
    """The commit the code ran at, with ``+changes`` when src/ differs from it."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return commit + ("+changes" if dirty else "")


def run_all(names, jobs: int) -> None:
    subprocess.run([sys.executable, str(HERE / "cohorts.py")], check=True)
    for name in names:
        print(f"== sonorad run {STUDIES[name]}", flush=True)
        subprocess.run([sys.executable, __file__, "--one", name, "--jobs", str(jobs)], check=True)
    print("== leave-one-scanner-out and ComBat", flush=True)
    subprocess.run([sys.executable, str(HERE / "loso_combat.py")], check=True)


# -- collating ----------------------------------------------------------------------------------
def _metrics(name):
    return pd.read_csv(RESULTS / name / "tables" / "metrics.csv")


def _predictions(name):
    p = pd.read_csv(RESULTS / name / "tables" / "predictions.csv", dtype={"case_id": str})
    return p[p["cohort"] == "external"].pivot(index="case_id", columns="model", values="probability")


def _ci(a, lo, hi):
    return f"{a:.3f} ({lo:.3f}-{hi:.3f})"


def _auc_row(y, score, name, what):
    from sonorad.evaluation import roc_auc_ci

    a = roc_auc_ci(y, score)
    return {"model": name, "what": what, "external AUC (95% CI)": _ci(a.auc, a.low, a.high), "_auc": a.auc}


def _table(frame: pd.DataFrame) -> str:
    cols = [c for c in frame.columns if not c.startswith("_")]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def collate() -> str:
    from sonorad.evaluation import delong_test, roc_auc_ci

    cases = pd.read_csv(WORK / "external" / "cases.csv", dtype={"case_id": str}).set_index("case_id")
    ext = cases[cases["center"] == "PL-Warsaw"]
    p1, p2, pb = _predictions("study1"), _predictions("study2"), _predictions("baseline")
    ids = ext.index.intersection(p1.index).intersection(p2.index).intersection(pb.index)
    y = ext.loc[ids, "label"].astype(int).to_numpy()
    out = []

    # every sonorad candidate with its training CV AUC (the only thing used to choose)
    cands = []
    preds = {"study1": p1, "study2": p2}
    for run in CANDIDATE_RUNS:
        if not (RESULTS / run / "tables" / "metrics.csv").exists():
            continue
        m = _metrics(run)
        preds.setdefault(run, _predictions(run) if run not in preds else preds[run])
        e = m[m["cohort"] == "external"].set_index("model")
        for model in e.index:
            cands.append({"run": run, "model": model, "train_cv_auc": e.loc[model].get("train_cv_auc", np.nan),
                          "auc": e.loc[model, "auc"], "low": e.loc[model, "auc_low"], "high": e.loc[model, "auc_high"]})
    cands = pd.DataFrame(cands)
    chosen = cands.dropna(subset=["train_cv_auc"]).sort_values("train_cv_auc", ascending=False).iloc[0]
    chosen_p = preds[chosen["run"]].loc[ids, chosen["model"]].to_numpy()

    # families: best model of each by training CV AUC, and the spread over the zoo
    rows = []

    def family_row(label, frame):
        frame = frame.dropna(subset=["auc"])
        pick = frame.dropna(subset=["train_cv_auc"]).sort_values("train_cv_auc", ascending=False)
        pick = pick.iloc[0] if len(pick) else frame.sort_values("auc", ascending=False).iloc[0]
        best = frame.sort_values("auc", ascending=False).iloc[0]
        rows.append({"family": label, "models": len(frame),
                     "chosen by training CV AUC": pick["model"].split("/")[-1],
                     "its external AUC (95% CI)": _ci(pick["auc"], pick["low"], pick["high"]),
                     "zoo range of external AUC": f"{frame['auc'].min():.3f}-{frame['auc'].max():.3f}",
                     "best external": f"{best['model'].split('/')[-1]} {best['auc']:.3f}"})

    s2 = cands[cands["run"] == "study2"]
    for fam, label in (("us", "BI-RADS only (US family)"), ("radiomics", "Radiomics"), ("dl", "DL (frozen Lite0)"),
                       ("radiomics_dl", "RadiomicsDL"), ("combined", "Combined: RadiomicsDL + BI-RADS")):
        family_row(label, s2[s2["model"].str.startswith(fam + "/")])
    for run, label in (("dl_lite1", "DL (frozen Lite1)"), ("dl_lite2", "DL (frozen Lite2)")):
        if (cands["run"] == run).any():
            family_row(label, cands[cands["run"] == run])
    s1 = cands[cands["run"] == "study1"]
    family_row("Combined: BI-RADS + Rad-score + DL-score (study-1 design)",
               s1[~s1["model"].isin(["rad_score", "dl_score"])])
    out.append("## External AUC by family (BUS-BRA -> BrEaST, 252 lesions)\n\n" + _table(pd.DataFrame(rows)))

    singles = []
    for col, what in (("rad_score", "Rad-score (LASSO signature of 929 PyRadiomics features)"),
                      ("dl_score", "DL-score (LASSO signature of 1280 frozen Lite0 features)")):
        singles.append(_auc_row(y, p1.loc[ids, col].to_numpy(), col, what))
    cnn = [c for c in p2.columns if c.startswith("cnn_")]
    baselines = {
        "(a) PyRadiomics original + LASSO-LR": pb.loc[ids, "radiomics/logistic_regression"].to_numpy(),
        "(b) fine-tuned CNN (" + cnn[0].removeprefix("cnn_") + ")": p2.loc[ids, cnn[0]].to_numpy(),
        "(c) BI-RADS alone (2/3/4/5)": ext.loc[ids, "birads"].astype(float).to_numpy(),
    }
    for name, score in baselines.items():
        singles.append(_auc_row(y, score, name, "baseline"))
    fine = ext.loc[ids, "birads_fine"].astype(float).to_numpy()
    singles.append(_auc_row(y, fine, "BI-RADS 4a/4b/4c (Polish radiologists)", "reference, not available for training"))
    singles.append({"model": f"{chosen['model']} ({chosen['run']})", "what": "sonorad, chosen by training CV AUC "
                    f"({chosen['train_cv_auc']:.3f}) among {len(cands.dropna(subset=['train_cv_auc']))} candidates",
                    "external AUC (95% CI)": _ci(chosen["auc"], chosen["low"], chosen["high"]), "_auc": chosen["auc"]})
    out.append("## Scores, baselines and the chosen sonorad model\n\n" + _table(pd.DataFrame(singles)))

    tests = []
    for name, score in baselines.items():
        d = delong_test(y, chosen_p, score)
        tests.append({"baseline": name, "AUC sonorad": f"{d.auc_a:.3f}", "AUC baseline": f"{d.auc_b:.3f}",
                      "difference (95% CI)": _ci(d.difference, d.low, d.high), "z": f"{d.z:.2f}",
                      "p": f"{d.p_value:.2g}"})
    d = delong_test(y, chosen_p, fine)
    tests.append({"baseline": "BI-RADS 4a/4b/4c (reference)", "AUC sonorad": f"{d.auc_a:.3f}",
                  "AUC baseline": f"{d.auc_b:.3f}", "difference (95% CI)": _ci(d.difference, d.low, d.high),
                  "z": f"{d.z:.2f}", "p": f"{d.p_value:.2g}"})
    out.append(f"## DeLong tests: {chosen['model']} against each baseline (paired, same lesions)\n\n"
               + _table(pd.DataFrame(tests)))

    cal = []
    for run, model in ((chosen["run"], chosen["model"]), ("baseline", "radiomics/logistic_regression"),
                       ("study2", cnn[0])):
        c = pd.read_csv(RESULTS / run / "tables" / "calibration.csv")
        r = c[(c["cohort"] == "external") & (c["model"] == model)]
        if len(r):
            r = r.iloc[0]
            cal.append({"model": model, "Brier": f"{r.brier:.3f}",
                        "intercept (95% CI)": _ci(r.intercept, r.intercept_low, r.intercept_high),
                        "slope (95% CI)": _ci(r.slope, r.slope_low, r.slope_high),
                        "Hosmer-Lemeshow chi2 (p)": f"{r.hl_chi2:.1f} ({r.hl_p:.2g})"})
    out.append("## Calibration on the external cohort\n\n" + _table(pd.DataFrame(cal)))

    costs = []
    for name in STUDIES:
        path = RESULTS / name / "cost.json"
        if path.exists():
            c = json.loads(path.read_text())
            stages = ", ".join(f"{k} {v:.0f} s" for k, v in c["stages_s"].items())
            costs.append({"run": c["study"], "wall": f"{c['wall_s'] / 60:.1f} min", "stages": stages,
                          "peak RSS main process / largest worker (MiB)": f"{c['peak_rss_main_mib']:.0f} / {c['peak_rss_workers_mib']:.0f}"})
    times = WORK / "extract_times.txt"
    note = f"\n\nFirst extraction into an empty cache (from {times.name}):\n\n```\n{times.read_text().strip()}\n```" \
        if times.exists() else ""
    out.append("## Cost on this machine (2 cores; features from the shared cache)\n\n" + _table(pd.DataFrame(costs))
               + note)

    loso = WORK / "loso.csv"
    if loso.exists():
        t = pd.read_csv(loso)
        t["AUC (95% CI)"] = [_ci(a, lo, hi) for a, lo, hi in zip(t["auc"], t["low"], t["high"])]
        out.append("## Leave-one-scanner-out inside BUS-BRA\n\n" + _table(t[["held-out scanner", "n", "malignant",
                                                                               "score", "AUC (95% CI)"]]))
    combat = WORK / "combat.csv"
    if combat.exists():
        t = pd.read_csv(combat)
        t["without ComBat"] = [_ci(a, lo, hi) for a, lo, hi in zip(t["auc_plain"], t["low_plain"], t["high_plain"])]
        t["with ComBat"] = [_ci(a, lo, hi) for a, lo, hi in zip(t["auc_combat"], t["low_combat"], t["high_combat"])]
        t["DeLong difference, p"] = [f"{d:+.3f}, p = {p:.2g}" for d, p in zip(t["difference"], t["p_value"])]
        out.append("## ComBat harmonization (batch = scanner, fitted on BUS-BRA) and the external AUC\n\n"
                   + _table(t[["score", "without ComBat", "with ComBat", "DeLong difference, p"]]))

    mp = _metrics("polish")
    internal = mp[mp["cohort"] == "internal"].sort_values("auc", ascending=False)
    rows = [{"model": r.model, "internal AUC (95% CI)": _ci(r.auc, r.auc_low, r.auc_high),
             "training CV AUC (whole pipeline)": f"{mp[(mp.cohort == 'training_cv') & (mp.model == r.model)]['auc'].iloc[0]:.3f}",
             "tuning CV AUC": "" if pd.isna(r.train_cv_auc) else f"{r.train_cv_auc:.3f}"}
            for r in internal.itertuples()]
    pol = pd.read_csv(WORK / "polish" / "cases.csv", dtype={"case_id": str}).set_index("case_id")
    pp = pd.read_csv(RESULTS / "polish" / "tables" / "predictions.csv", dtype={"case_id": str})
    internal_ids = pp.loc[pp["cohort"] == "internal", "case_id"].unique()
    yi = pol.loc[internal_ids, "label"].astype(int).to_numpy()
    fine_i = ext.loc[internal_ids, "birads_fine"].astype(float).to_numpy()
    for score, name in ((pol.loc[internal_ids, "birads"].astype(float).to_numpy(), "BI-RADS alone (2/3/4/5)"),
                        (fine_i, "BI-RADS 4a/4b/4c (reference)")):
        a = roc_auc_ci(yi, score)
        rows.append({"model": name, "internal AUC (95% CI)": _ci(a.auc, a.low, a.high),
                     "training CV AUC (whole pipeline)": "", "tuning CV AUC": ""})
    from sonorad.pipeline.result import StudyResult

    kept = StudyResult.load(RESULTS / "polish").design.selected_features["combined"]
    out.append("## Study-1 design inside the Polish cohort (70/30 patient split, seed 0)\n\n"
               f"176 training and {len(internal_ids)} internal-validation lesions (patients never shared). "
               f"Stage-2 LASSO kept: {', '.join(kept)}.\n\n" + _table(pd.DataFrame(rows)))
    return "\n\n".join(out)


def _recalibration_section() -> str:
    """The site-recalibration and BI-RADS subgroup tables of ``recalibrate_breast.py``, when it was run."""
    folder = WORK / "recalibration"
    if not (folder / "recalibration.md").exists():
        return ""
    return ("\n\n## Site recalibration on BrEaST and BI-RADS subgroups (study-1 bundle)\n\n"
            "`python benchmarks/breast_us/recalibrate_breast.py benchmarks/_work/breast_us/results/study1 "
            "--cases benchmarks/_work/breast_us/external/cases.csv --out benchmarks/_work/breast_us/recalibration "
            "--method logistic --fraction 0.3 --seed 0 --subgroup birads --cache benchmarks/_work/cache`: the "
            "run's bundle is recalibrated (logistic) on a patient-grouped, outcome-stratified 30% of BrEaST and "
            "both bundles are evaluated on the other 70%. The subgroup table is the original bundle on all 252 "
            "lesions by coarse BI-RADS.\n\n" + (folder / "recalibration.md").read_text().strip() + "\n\n"
            + (folder / "subgroups.md").read_text().strip())


def _optimism_section() -> str:
    """Bootstrap optimism-corrected training performance of the study-1 run, next to its external AUC."""
    path = RESULTS / "study1" / "tables" / "bootstrap_validation.csv"
    if not path.exists():
        return ""
    from sonorad.pipeline.result import StudyResult

    boot = StudyResult.load(RESULTS / "study1").bootstrap
    table = pd.read_csv(path, index_col=0)
    m = _metrics("study1")
    row = m[(m["cohort"] == "external") & (m["model"] == boot.model)].iloc[0]
    rows = [{"index": k, "apparent (BUS-BRA)": f"{r.apparent:.3f}", "optimism": f"{r.optimism:+.3f}",
             "optimism-corrected (BUS-BRA)": f"{r.corrected:.3f}", "resamples used": int(r.n)}
            for k, r in table.iterrows()]
    v = boot.validation
    return ("\n\n## Optimism-corrected training performance of the chosen study-1 model\n\n"
            f"Harrell's bootstrap (`evaluation.bootstrap: {v.n_resamples}` in bus_bra_to_breast_study1.yaml; "
            "patients resampled with replacement; in every resample the whole design, Rad-score and "
            "DL-score LASSO, stage-2 LASSO, tuning of every zoo model and the choice of model, is refitted, "
            "and the optimism is its performance on its own sample minus its performance on the original "
            f"930 BUS-BRA cases). Chosen model: {boot.model}, seed {v.random_state}.\n\n"
            + _table(pd.DataFrame(rows))
            + f"\n\nNext to it, the same model on the external cohort (BrEaST, 252 lesions): AUC "
            f"{_ci(row['auc'], row['auc_low'], row['auc_high'])}. The corrected AUC estimates the "
            "performance at a new sample of the training population (the same four scanners in Brazil); "
            "the gap to the external AUC is what the move to a new country costs on top of that. "
            f"Bias-corrected calibration curve: `results/study1/tables/bootstrap_calibration.csv` "
            f"(mean absolute error {v.mean_absolute_error:.3f}, 0.9 quantile {v.e90:.3f})."
            + (f" {len(v.failures)} resample(s) failed: {v.failures}." if v.failures else ""))


def _study2_cost_section() -> str:
    """The study-2 run's cost and families' external AUCs now, next to the run before parallel fitting."""
    cost_path = RESULTS / "study2" / "cost.json"
    if not cost_path.exists():
        return ""
    before = json.loads((HERE / "study2_before.json").read_text())
    cost = json.loads(cost_path.read_text())
    m = _metrics("study2")
    e = m[m["cohort"] == "external"]
    rows = []
    for fam, old in before["families"].items():
        f = e[e["model"].str.startswith(fam + "/")].dropna(subset=["train_cv_auc"])
        pick = f.sort_values("train_cv_auc", ascending=False).iloc[0]
        inside = old["low"] <= pick["auc"] <= old["high"]
        rows.append({"family": fam, f"before ({before['commit']}): chosen, external AUC (95% CI)":
                     f"{old['chosen']}, {_ci(old['auc'], old['low'], old['high'])}",
                     f"now ({cost['commit']}): chosen, external AUC (95% CI)":
                     f"{pick['model'].split('/')[-1]}, {_ci(pick['auc'], pick['auc_low'], pick['auc_high'])}",
                     "now inside the earlier CI": "yes" if inside else "no"})

    def stages(c):
        return ", ".join(f"{k} {v:.0f} s" for k, v in c.items())

    return ("\n\n## Study-2 cost: before and after parallel fitting\n\n"
            f"| run | wall | stages |\n|---|---|---|\n"
            f"| before ({before['commit']}) | {before['wall_s'] / 60:.1f} min | {stages(before['stages_s'])} |\n"
            f"| now ({cost['commit']}) | {cost['wall_s'] / 60:.1f} min | {stages(cost['stages_s'])} |\n\n"
            f"Ratio now / before: {cost['wall_s'] / before['wall_s']:.2f}. "
            "Where the time went (`python benchmarks/breast_us/profile_study2.py`): the LASSO paths of the "
            "imaging selections (6 per family per fit: 5 tuning folds and all cases) and the MLP's 3000 "
            "L-BFGS iterations were more than four fifths of the fit. Changes: every piece of a fit runs on both "
            "cores; the Combined family reuses the RadiomicsDL selection (same columns, same rows); the MLP "
            "stops at 300 iterations. The families' chosen models and external AUCs:\n\n"
            + _table(pd.DataFrame(rows)))


def write_results(tables: str) -> Path:
    commits = sorted({json.loads(p.read_text()).get("commit", "?") for p in RESULTS.glob("*/cost.json")})
    head = ("# Real-data benchmark: BUS-BRA (Brazil) -> BrEaST-Lesions-USG (Poland)\n\n"
            "Benign vs malignant breast lesions. Every model is fitted on the 930 BUS-BRA images (4 scanners, "
            "526 patients) only; the 252 BrEaST lesions are touched only to predict.\n\n"
            "Reproduce every number: `python benchmarks/breast_us/run_all.py` (data from ../shared/data; the runs "
            f"below were made with the code of commit {', '.join(commits)}). Per-case predictions, metrics, "
            "figures and each run's report are under `benchmarks/_work/breast_us/results/<run>/`.")
    interpretation = (HERE / "interpretation.md").read_text() if (HERE / "interpretation.md").exists() else ""
    mixed = HERE / "mixed_spacing.md"  # written by mixed_spacing.py
    tables = (tables + _recalibration_section() + _optimism_section() + _study2_cost_section()
              + ("\n\n" + mixed.read_text() if mixed.exists() else ""))
    path = HERE / "RESULTS.md"
    path.write_text(head + "\n\n" + tables + "\n\n" + interpretation)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated runs: " + ", ".join(STUDIES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--collate", action="store_true", help="only rebuild RESULTS.md from finished runs")
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.jobs)
        return
    if not args.collate:
        run_all(args.only.split(",") if args.only else list(STUDIES), args.jobs)
    tables = collate()
    print(f"written: {write_results(tables)}")


if __name__ == "__main__":
    main()
