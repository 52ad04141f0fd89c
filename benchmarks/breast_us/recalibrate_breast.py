"""Site recalibration and subgroup results of a finished run on its external cohort.

Recalibrates the run's bundle (``RUN/model``) on a patient-grouped fraction of the external cohort
(default 30%, stratified by whether the patient has a positive lesion, seeded) and evaluates the
original and the recalibrated bundle on the other cases: AUC, calibration-in-the-large, intercept,
slope, Brier and Hosmer-Lemeshow. Also writes the original bundle's results per subgroup of one
column of the cases table (default ``birads``; with Cochran's Q across subgroups) and, when the
run used ``evaluation.bootstrap``, the optimism-corrected training AUC next to the external AUC.

Usage (from the repository root)::

    python benchmarks/breast_us/recalibrate_breast.py RUN --cases CASES.csv --out DIR \
        [--method logistic] [--fraction 0.3] [--seed 0] [--subgroup birads] [--cache CACHE]

Writes ``DIR/recalibration.md`` and ``.csv``, ``DIR/subgroups.md`` and ``.csv`` and the new bundle
``DIR/model_<method>/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def local_split(table: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.Index, pd.Index]:
    """Case ids of the recalibration sample (``fraction`` of the patients) and of the evaluation sample."""
    patients = table.groupby("patient_id")["label"].apply(lambda s: int((s.astype(str) == "1").any()))
    rng = np.random.default_rng(seed)
    local = []
    for _, group in patients.groupby(patients):
        ids = group.index.to_numpy()
        rng.shuffle(ids)
        local += list(ids[: int(round(fraction * len(ids)))])
    is_local = table["patient_id"].isin(local)
    return table.index[is_local], table.index[~is_local]


def main() -> None:
    from sonorad.bundle import load_bundle
    from sonorad.bundle.recalibrate import _statistics, recalibrate_bundle
    from sonorad.cohort import read_cases
    from sonorad.evaluation import performance_by_center
    from sonorad.evaluation.formatting import markdown_table, paper_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--cases", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--method", default="logistic", choices=["intercept", "logistic", "isotonic"])
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subgroup", default="birads")
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()

    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(run / "model")
    cache = args.cache or (run / "features" / ".cache")
    table = read_cases(args.cases)
    external = table[~table["center"].astype(str).isin([str(c) for c in bundle.summary.get("centers") or []])]
    local_ids, test_ids = local_split(external, args.fraction, args.seed)
    result = recalibrate_bundle(bundle, external.loc[local_ids], method=args.method, out=out / f"model_{args.method}",
                                models=[bundle.chosen], seed=args.seed, cache=cache)
    new = load_bundle(result.path)
    test = external.loc[test_ids]
    y = (test["label"].astype(str) == "1").astype(int)
    rows = []
    for label, b in (("before (original bundle)", bundle), (f"after ({args.method}, fitted on the other cases)", new)):
        p = b.predict(test, models=[bundle.chosen], explain=False, cache=cache).probabilities()[bundle.chosen]
        rows.append(_statistics(y.loc[p.index].to_numpy(), p.to_numpy(), label, bundle.chosen))
    before_after = pd.DataFrame(rows)
    before_after.to_csv(out / "recalibration.csv", index=False)
    shown = paper_table(before_after, {
        "Predictions": "predictions", "n": "n", "Events": "events", "AUC (95% CI)": ("auc", "auc_low", "auc_high"),
        "CITL": "citl", "Intercept (95% CI)": ("intercept", "intercept_low", "intercept_high"),
        "Slope (95% CI)": ("slope", "slope_low", "slope_high"), "Brier": "brier", "HL chi2": "hl_chi2",
        "HL p": "hl_p"}, p_values=["HL p"])
    text = [f"Recalibration sample: {len(local_ids)} cases ({result.record['n_patients']} patients, "
            f"{result.record['n_events']} events); evaluation sample: {len(test_ids)} cases, {int(y.sum())} events; "
            f"model {bundle.chosen}; seed {args.seed}.", "", markdown_table(shown), ""]

    # the original bundle per subgroup of the whole external cohort
    p = bundle.predict(external, models=[bundle.chosen], explain=False, cache=cache).probabilities()[bundle.chosen]
    sub = external.loc[p.index, args.subgroup].astype(str)
    ye = (external.loc[p.index, "label"].astype(str) == "1").astype(int)
    by = performance_by_center(ye.to_numpy(), p.to_numpy(), sub.to_numpy(), threshold=bundle.cutoffs[bundle.chosen],
                               name=bundle.chosen, pooled="all")
    by.table.to_csv(out / "subgroups.csv", index=False)
    sub_shown = paper_table(by.table, {
        args.subgroup: "center", "n": "n", "Events": "n_events", "AUC (95% CI)": ("auc", "auc_low", "auc_high"),
        "Sensitivity (95% CI)": ("sensitivity", "sensitivity_low", "sensitivity_high"),
        "Specificity (95% CI)": ("specificity", "specificity_low", "specificity_high"), "Brier": "brier",
        "Not computable": "not_computable"})
    h = by.heterogeneity
    sub_text = [markdown_table(sub_shown), "",
                (f"Cochran's Q = {h.q:.2f}, df {h.df}, p {h.p_value:.3g}, I² {100 * h.i2:.1f}% across "
                 f"{', '.join(h.centers)}" if h.computable else f"Heterogeneity test not computable: {h.reason}"), ""]
    try:
        from sonorad.pipeline.result import StudyResult

        res = StudyResult.load(run)
        if res.bootstrap is not None:
            t = res.bootstrap.validation.table
            m = res.evaluation.metrics.set_index(["cohort", "model"])
            ext = m.loc[(res.primary, res.chosen_model)]
            text += [f"Training AUC of {res.chosen_model}: apparent {t.loc['AUC', 'apparent']:.3f}, optimism-corrected "
                     f"{t.loc['AUC', 'corrected']:.3f} ({res.bootstrap.validation.n_resamples} bootstrap resamples); "
                     f"{res.primary} AUC {ext['auc']:.3f} ({ext['auc_low']:.3f}-{ext['auc_high']:.3f}).", ""]
    except Exception as exc:  # noqa: BLE001 - an older run folder: the rest stands
        text += [f"(no optimism-corrected training AUC: {exc})", ""]
    (out / "recalibration.md").write_text("\n".join(text), encoding="utf-8")
    (out / "subgroups.md").write_text("\n".join(sub_text), encoding="utf-8")
    print("\n".join(text + sub_text))


if __name__ == "__main__":
    main()
