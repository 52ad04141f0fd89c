"""Site-robust candidates, chosen by leave-one-scanner-out inside BUS-BRA, then BrEaST once.

    python benchmarks/breast_us/generalization.py [--jobs 2] [--inner 3] [--set inductive|site|standardized|bins|ensemble|tta|cnn|cnn_shift|dl_ft|lasso_stable|run]

Every candidate set below was fixed before BrEaST was looked at; each candidate is scored on
BrEaST exactly once and every one is reported (``GENERALIZATION.md``). Inside BUS-BRA the honest
proxy for a new site is leave-one-scanner-out (LOSO): fit on three scanners, score the fourth.
Candidates are judged by their worst scanner as well as by the pooled LOSO AUC.

Base scores (sonorad's own estimators, defaults unchanged), fitted on the training rows only:

- ``rad``: today's Rad-score (:class:`sonorad.scores.RadScore`, 929 PyRadiomics features);
- ``rad_stable``: the same Rad-score on the features whose between-scanner share of variance
  (eta squared of scanner, computed on the training rows) is at most ``tau``; ``tau`` is chosen by
  LOSO among the values of ``TAUS`` (the cross-site analogue of the ICC filter);
- ``dl``: today's DL-score (:class:`sonorad.scores.DLScore`, 1280 frozen EfficientNet-Lite0 features).

Stacks (logistic regression on out-of-fold base scores, ``--inner`` patient-grouped folds; the
stack is fitted on the out-of-fold values and applied to base scores refitted on all rows):

- image only: ``rad``, ``rad_stable``, ``rad + dl``, ``rad_stable + dl``, ``rank(rad) + rank(dl)``
  (scores mapped to their training-cohort percentile first);
- with coarse BI-RADS: the simplest stack a user could hand-build, ``birads + dl`` (logistic
  regression over BI-RADS and a LASSO DL-score of frozen Lite0), ``birads + rad + dl`` and
  ``birads + rad_stable + dl``.

``--set site`` runs the transductive set instead, reported apart: the same Rad-score, rad + dl,
simple stack and birads + rad + dl, on features z-scored within each site, the new site by its
own unlabeled images (:func:`site_standardized`), each compared with the same candidate without it.
``--set standardized`` scores rad, rad + dl and birads + rad + dl with the Rad-score computed on
ring-standardized images (``standardize_images.py``, then ``sonorad extract``). ``--set ensemble``
stacks one DL-score per frozen backbone (Lite0, Lite1, Lite2; the features of ``run_all.py``'s
``dl_lite1`` / ``dl_lite2`` runs) instead of the Lite0 one. ``--set bins`` is the same with radiomics extracted at bin width 10 (``params_binwidth10.yaml``).
``--set lasso_stable`` fits the Rad-score on the features that the LASSO selects whichever
training scanner is left out (:class:`ScannerStableLasso`). ``--set cnn`` stacks the fine-tuned Lite0's logit (out of fold on BUS-BRA, ``cnn_oof.py``) with
the other scores; ``--set cnn_shift`` the same CNN fine-tuned with ``augment: scanner_shift``
(``cnn_oof.py --augment scanner_shift --split folds all loso``), and scores the CNN alone inside
BUS-BRA, out of fold and leave-one-scanner-out, with either augmentation. ``--set dl_ft`` stacks
the DL-score fitted on that scanner-shift CNN's pooled features (``cnn_oof.py ... --dl-score``)
instead of the frozen Lite0 one, and scores it alone inside BUS-BRA. ``--set tta`` fits the DL-score on
flip-averaged or context-averaged Lite0 embeddings (``tta_features.py``). ``--set run`` reads two finished
``sonorad run`` folders of the study-1 design, Lite0 (``run_all.py``'s study1) and one DL-score
per Lite0/1/2 backbone (``bus_bra_to_breast_study1_lite012.yaml``), and scores their models.

Writes ``benchmarks/_work/breast_us/generalization.csv`` (``generalization_site.csv``) and
``benchmarks/breast_us/GENERALIZATION.md`` from every set run so far.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sonorad.evaluation import calibration_intercept_slope, delong_test, roc_auc_ci
from sonorad.scores import DLScore, RadScore
from sonorad.selection import make_grouped_cv

HERE = Path(__file__).resolve().parent
WORK = HERE.parents[0] / "_work" / "breast_us"
FEATURES = WORK / "results" / "study1" / "features"
SEED = 0
TAUS = (0.02, 0.05, 0.10)
STACKS = {  # name -> (base scores, with BI-RADS, rank inputs)
    "rad": (("rad",), False, False),
    "rad_stable": (("rad_stable",), False, False),
    "rad + dl": (("rad", "dl"), False, False),
    "rad_stable + dl": (("rad_stable", "dl"), False, False),
    "rank(rad) + rank(dl)": (("rad", "dl"), False, True),
    "birads + dl (simple stack)": (("dl",), True, False),
    "birads + rad + dl": (("rad", "dl"), True, False),
    "birads + rad_stable + dl": (("rad_stable", "dl"), True, False),
}


class ScannerStableFilter(TransformerMixin, BaseEstimator):
    """Keep features whose share of variance explained by the scanner (eta squared) is <= ``tau``.

    Fitted on training rows only: ``fit(X, y, centers=...)``.
    """

    def __init__(self, tau: float = 0.05):
        self.tau = tau

    def fit(self, X, y=None, centers=None):
        X = pd.DataFrame(X)
        c = pd.Series(np.asarray(centers), index=X.index)
        grand = X.mean()
        between = sum((c == k).sum() * (X[c == k].mean() - grand) ** 2 for k in c.unique())
        total = ((X - grand) ** 2).sum()
        self.eta2_ = (between / total.replace(0, np.nan)).fillna(1.0)
        self.columns_ = list(self.eta2_.index[self.eta2_ <= self.tau])
        if not self.columns_:
            self.columns_ = [self.eta2_.idxmin()]
        return self

    def transform(self, X):
        return pd.DataFrame(X)[self.columns_]


class ScannerStableLasso(TransformerMixin, BaseEstimator):
    """Keep the features that the Rad-score's LASSO selects whichever training scanner is left out.

    ``fit(X, y, centers=..., groups=...)`` fits one :class:`~sonorad.scores.RadScore` (defaults) per
    training scanner, on the rows of the other scanners, and keeps the features selected in at least
    ``min_share`` of those fits (all of them by default): the leave-one-scanner-out stability of the
    LASSO selection. Training rows only. With fewer than two scanners, or when no feature is stable,
    every feature is kept.
    """

    def __init__(self, min_share: float = 1.0):
        self.min_share = min_share

    def fit(self, X, y=None, centers=None, groups=None):
        X = pd.DataFrame(X)
        centers, y = np.asarray(centers), np.asarray(y)
        groups = np.asarray(groups) if groups is not None else np.arange(len(y))
        scanners = sorted(set(centers))
        counts = pd.Series(0, index=X.columns)
        self.selection_counts_, self.columns_ = counts, list(X.columns)
        if len(scanners) < 2:
            return self
        for scanner in scanners:
            rows = centers != scanner
            fitted = RadScore(random_state=SEED).fit(X[rows], y[rows], groups=groups[rows])
            counts[fitted.features_] += 1
        self.columns_ = list(counts.index[counts >= self.min_share * len(scanners)]) or self.columns_
        return self

    def transform(self, X):
        return pd.DataFrame(X)[self.columns_]


def base_model(kind: str, tau: float | None = None):
    if kind in ("dl", "dl1", "dl2", "dl_flip", "dl_context"):
        return Pipeline([("score", DLScore(random_state=SEED))])
    if kind == "rad_stable":
        return Pipeline([("stable", ScannerStableFilter(tau)), ("score", RadScore(random_state=SEED))])
    if kind == "rad_lasso_stable":
        return Pipeline([("stable", ScannerStableLasso()), ("score", RadScore(random_state=SEED))])
    return Pipeline([("score", RadScore(random_state=SEED))])


def fit_base(kind, tau, X, y, groups, centers):
    params = {"score__groups": groups}
    if kind == "rad_stable":
        params["stable__centers"] = centers
    if kind == "rad_lasso_stable":
        params.update({"stable__centers": centers, "stable__groups": groups})
    return base_model(kind, tau).fit(X, y, **params)


def base_scores(kind, tau, X, y, groups, centers, X_new, inner, jobs):
    """Out-of-fold scores on the training rows and scores of ``X_new`` from the full fit."""
    folds = make_grouped_cv(inner, y, groups, random_state=SEED)
    rows = [tr for tr, _ in folds] + [np.arange(len(y))]
    fits = Parallel(n_jobs=jobs)(delayed(fit_base)(kind, tau, X.iloc[r], y[r], groups[r], centers[r]) for r in rows)
    oof = np.empty(len(y))
    for model, (_, te) in zip(fits[:-1], folds):
        oof[te] = model.decision_function(X.iloc[te])
    return oof, fits[-1].decision_function(X_new)


def stack_predict(spec, oof: dict, new: dict, birads_tr, birads_new, y):
    kinds, with_birads, rank = spec
    tr = np.column_stack([oof[k] for k in kinds])
    te = np.column_stack([new[k] for k in kinds])
    if rank:  # each score as its training-cohort percentile
        te = np.column_stack([np.searchsorted(np.sort(tr[:, j]), te[:, j]) / len(tr) for j in range(tr.shape[1])])
        tr = np.column_stack([pd.Series(tr[:, j]).rank(pct=True).to_numpy() for j in range(tr.shape[1])])
    if with_birads:
        tr, te = np.column_stack([birads_tr, tr]), np.column_stack([birads_new, te])
    model = LogisticRegression(C=1e6, max_iter=10000).fit(tr, y)
    return model.predict_proba(te)[:, 1]


def load():
    cases = pd.read_csv(WORK / "external" / "cases.csv", dtype={"case_id": str, "patient_id": str}).set_index("case_id")
    tables = {"rad": pd.read_parquet(FEATURES / "radiomics.parquet"),
              "dl": pd.read_parquet(FEATURES / "deep_efficientnet_lite0.parquet")}
    ids = cases.index.intersection(tables["rad"].index).intersection(tables["dl"].index)
    return cases.loc[ids], {k: v.loc[ids] for k, v in tables.items()}


def evaluate_split(cases, tables, train, test, taus, inner, jobs, stacks=STACKS, given=None):
    """Every stack fitted on ``train`` rows: ``{tau: {stack: P(malignant) of the test rows}}``.

    ``given``: base scores computed elsewhere, ``{kind: (out-of-fold values of the train rows,
    values of the test rows)}`` (the fine-tuned CNN's, ``cnn_oof.py``)."""
    y = cases.loc[train, "label"].astype(int).to_numpy()
    groups = cases.loc[train, "patient_id"].astype(str).to_numpy()
    centers = cases.loc[train, "center"].astype(str).to_numpy()
    needed = {kind for spec in stacks.values() for kind in spec[0]}
    oof = {(k, None): v[0] for k, v in (given or {}).items()}
    new = {(k, None): v[1] for k, v in (given or {}).items()}
    for kind, tau in [("rad", None), ("dl", None), ("dl1", None), ("dl2", None), ("dl_flip", None),
                      ("dl_context", None), ("rad_lasso_stable", None), *(("rad_stable", t) for t in taus)]:
        if kind not in needed or (kind, tau) in oof:
            continue
        X = tables["rad" if kind in ("rad_stable", "rad_lasso_stable") else kind]
        oof[kind, tau], new[kind, tau] = base_scores(kind, tau, X.loc[train], y, groups, centers, X.loc[test],
                                                     inner, jobs)
    b_tr = cases.loc[train, "birads"].astype(float).to_numpy()
    b_te = cases.loc[test, "birads"].astype(float).to_numpy()
    out = {}
    for tau in taus:
        o = {k: oof[k, tau if k == "rad_stable" else None] for k in needed}
        n = {k: new[k, tau if k == "rad_stable" else None] for k in needed}
        out[tau] = {name: stack_predict(spec, o, n, b_tr, b_te, y) for name, spec in stacks.items()}
    return out


def site_standardized(tables: dict, centers: pd.Series) -> dict:
    """Every feature z-scored within its own site: the transductive option.

    A site's mean and SD come from that site's own rows, features only (no label): for the
    training scanners these are training rows; for the held-out scanner (LOSO) and for BrEaST
    they are the new site's unlabeled images, which a deployment has once it has scanned a batch.
    """
    out = {}
    for name, table in tables.items():
        grouped = table.groupby(centers.loc[table.index])
        sd = grouped.transform("std").replace(0, np.nan)
        out[name] = ((table - grouped.transform("mean")) / sd).fillna(0.0)
    return out


def loso(cases, tables, taus, inner, jobs, stacks=STACKS):
    """Leave-one-scanner-out inside BUS-BRA: pooled and per-scanner AUC of every stack and tau."""
    bus = cases[cases["center"] != "PL-Warsaw"]
    y = bus["label"].astype(int)
    preds = {(tau, name): pd.Series(np.nan, index=bus.index) for tau in taus for name in stacks}
    for scanner in sorted(bus["center"].unique()):
        t0 = time.perf_counter()
        test = bus.index[bus["center"] == scanner]
        train = bus.index[bus["center"] != scanner]
        for tau, fitted in evaluate_split(cases, tables, train, test, taus, inner, jobs, stacks).items():
            for name, p in fitted.items():
                preds[tau, name].loc[test] = p
        print(f"  LOSO {scanner}: {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for (tau, name), p in preds.items():
        per = {s: roc_auc_ci(y[bus["center"] == s].to_numpy(), p[bus["center"] == s].to_numpy()).auc
               for s in sorted(bus["center"].unique())}
        rows.append({"candidate": name, "tau": tau, "loso_pooled_auc": roc_auc_ci(y.to_numpy(), p.to_numpy()).auc,
                     "loso_worst_auc": min(per.values()), **{f"loso_{s}": v for s, v in per.items()}})
    return pd.DataFrame(rows)


def todays_models(test) -> dict:
    """Today's sonorad models on BrEaST from the benchmark runs: the RadiomicsDL family's and the study-1
    design's model chosen by training CV AUC (``run_all.py`` must have run)."""
    out = {}
    for key, run, prefix in (("image", "study2", "radiomics_dl/"), ("birads", "study1", "")):
        m = pd.read_csv(WORK / "results" / run / "tables" / "metrics.csv")
        e = m[(m["cohort"] == "external") & m["model"].str.startswith(prefix)].dropna(subset=["train_cv_auc"])
        model = e.sort_values("train_cv_auc", ascending=False).iloc[0]["model"]
        p = pd.read_csv(WORK / "results" / run / "tables" / "predictions.csv", dtype={"case_id": str})
        p = p[(p["cohort"] == "external") & (p["model"] == model)].set_index("case_id")["probability"]
        out[key] = (f"{run}: {model}", p.loc[test].to_numpy())
    return out


def _diff(kind: str):
    return lambda r: f"{r[f'vs_{kind}_diff']:+.3f}, {r[f'vs_{kind}_p']:.2g}"


def _scanner_columns(frame: pd.DataFrame) -> list[str]:
    """The per-scanner LOSO AUC columns (``loso_<scanner>``) of a result table."""
    return [c for c in frame.columns if c.startswith("loso_") and c not in ("loso_pooled_auc", "loso_worst_auc")]


def candidate_table(out: pd.DataFrame, extra: list) -> list[str]:
    """Markdown table of candidates: LOSO AUCs, BrEaST AUC, the ``(header, cell(row))`` of ``extra``, calibration."""
    scanners = _scanner_columns(out)
    loso = ["loso_pooled_auc", "loso_worst_auc"] if "loso_pooled_auc" in out.columns else []
    header = ["candidate", *(["LOSO pooled AUC", "LOSO worst scanner"] if loso else []), *(c[5:] for c in scanners),
              "BrEaST AUC (95% CI)", *(h for h, _ in extra), "slope", "intercept"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in out.iterrows():
        cells = [r.candidate, *(f"{r[c]:.3f}" for c in loso), *(f"{r[c]:.3f}" for c in scanners),
                 f"{r.breast_auc:.3f} ({r.breast_low:.3f}-{r.breast_high:.3f})", *(cell(r) for _, cell in extra),
                 f"{r.slope:.2f}", f"{r.intercept:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(out: pd.DataFrame, grid: pd.DataFrame, tau: float, today: dict, seconds: float) -> str:
    lines = candidate_table(out, [("vs today: diff, p", _diff("today")), ("vs simple stack: diff, p", _diff("simple")),
                                  ("vs fine BI-RADS: diff, p", _diff("fine_birads"))])
    taus = grid[grid["candidate"] == "rad_stable"][["tau", "loso_pooled_auc", "loso_worst_auc"]]
    tau_lines = ["| tau | LOSO pooled AUC | LOSO worst scanner |", "|---|---|---|"] + [
        f"| {r.tau} | {r.loso_pooled_auc:.3f} | {r.loso_worst_auc:.3f} |" for r in taus.itertuples()]
    return "\n".join([
        "# Generalization: candidates chosen inside BUS-BRA, evaluated once on BrEaST", "",
        "`python benchmarks/breast_us/generalization.py` (after `run_all.py`; " + f"{seconds / 60:.0f} min on 2 cores). "
        "Every candidate below was fixed before BrEaST was looked at and each was scored on BrEaST once; "
        "all are listed. LOSO = leave-one-scanner-out inside BUS-BRA (fit on three scanners, score the fourth). "
        "'today' is the sonorad model of the same kind from the benchmark runs: image-only rows against "
        f"{today['image'][0]}, BI-RADS rows against {today['birads'][0]} (paired DeLong, the same 252 lesions). "
        "'simple stack': logistic regression over coarse BI-RADS and a LASSO DL-score of frozen Lite0 "
        "features. 'fine BI-RADS': the Polish radiologists' 4a/4b/4c grading (0.930), which no model sees.", "",
        f"Scanner-stable filter: features whose scanner share of variance (eta squared, training rows) is at most "
        f"tau; tau = {tau} chosen by the worst-scanner LOSO AUC of the stable Rad-score:", "", *tau_lines, "",
        *lines, ""])


SITE_STACKS = {  # the transductive set: fixed before it was run, each scored on BrEaST once
    name: STACKS[name] for name in ("rad", "rad + dl", "birads + dl (simple stack)", "birads + rad + dl")
}
STANDARDIZED_STACKS = {  # the standardized-image set: the candidates that have a Rad-score
    name: STACKS[name] for name in ("rad", "rad + dl", "birads + rad + dl")
}
ENSEMBLE = ("dl", "dl1", "dl2")  # DL-scores of frozen EfficientNet-Lite0, -Lite1, -Lite2 features
ENSEMBLE_STACKS = {  # candidate -> (spec, the same without the ensemble: Lite0 only)
    "dl ensemble (Lite0/1/2)": ((ENSEMBLE, False, False), (("dl",), False, False)),
    "rad + dl ensemble": ((("rad", *ENSEMBLE), False, False), STACKS["rad + dl"]),
    "birads + dl ensemble": ((ENSEMBLE, True, False), STACKS["birads + dl (simple stack)"]),
    "birads + rad + dl ensemble": ((("rad", *ENSEMBLE), True, False), STACKS["birads + rad + dl"]),
}

TTA_STACKS = {  # candidate -> (spec, the same with today's Lite0 DL-score); fixed before the run
    **{f"dl {kind}": (((f"dl_{kind}",), False, False), (("dl",), False, False)) for kind in ("flip", "context")},
    **{f"rad + dl {kind}": ((("rad", f"dl_{kind}"), False, False), STACKS["rad + dl"]) for kind in ("flip", "context")},
    **{f"birads + rad + dl {kind}": ((("rad", f"dl_{kind}"), True, False), STACKS["birads + rad + dl"])
       for kind in ("flip", "context")},
}

LASSO_STABLE_STACKS = {  # candidate -> (spec, the same with today's Rad-score); fixed before the run
    "rad lasso-stable": ((("rad_lasso_stable",), False, False), STACKS["rad"]),
    "rad lasso-stable + dl": ((("rad_lasso_stable", "dl"), False, False), STACKS["rad + dl"]),
    "birads + rad lasso-stable + dl": ((("rad_lasso_stable", "dl"), True, False), STACKS["birads + rad + dl"]),
}

CNN_STACKS = {  # candidate -> (spec, the same without the fine-tuned CNN); fixed before the run
    "cnn": ((("cnn",), False, False), (("dl",), False, False)),
    "rad + cnn": ((("rad", "cnn"), False, False), STACKS["rad"]),
    "rad + dl ensemble + cnn": ((("rad", *ENSEMBLE, "cnn"), False, False), (("rad", *ENSEMBLE), False, False)),
    "birads + rad + cnn": ((("rad", "cnn"), True, False), STACKS["birads + rad + dl"]),
    "birads + rad + dl ensemble + cnn": ((("rad", *ENSEMBLE, "cnn"), True, False), (("rad", *ENSEMBLE), True, False)),
}


CNN_SHIFT_STACKS = {  # candidate -> (spec, the same with the CNN of the standard augmentation); fixed before the run
    "cnn scanner shift": ((("cnn_shift",), False, False), (("cnn",), False, False)),
    "rad + cnn scanner shift": ((("rad", "cnn_shift"), False, False), (("rad", "cnn"), False, False)),
    "rad + dl ensemble + cnn scanner shift": ((("rad", *ENSEMBLE, "cnn_shift"), False, False),
                                              (("rad", *ENSEMBLE, "cnn"), False, False)),
    "birads + rad + dl ensemble + cnn scanner shift": ((("rad", *ENSEMBLE, "cnn_shift"), True, False),
                                                       (("rad", *ENSEMBLE, "cnn"), True, False)),
}


DLFT_STACKS = {  # candidate -> (spec, the same with the frozen Lite0 DL-score); fixed before the run
    "dl fine-tuned": ((("dl_ft",), False, False), (("dl",), False, False)),
    "rad + dl fine-tuned": ((("rad", "dl_ft"), False, False), STACKS["rad + dl"]),
    "rad + dl ensemble + dl fine-tuned": ((("rad", *ENSEMBLE, "dl_ft"), False, False), (("rad", *ENSEMBLE), False, False)),
    "birads + rad + dl fine-tuned": ((("rad", "dl_ft"), True, False), STACKS["birads + rad + dl"]),
}


def _logits(name: str, column: str = "logit") -> pd.Series:
    return pd.read_csv(WORK / name, dtype={"case_id": str}).set_index("case_id")[column]


def cnn_scores(cases, train, test) -> dict:
    """The fine-tuned Lite0's logits: out of fold on BUS-BRA (``cnn_oof.py``), and on BrEaST from the
    CNN fine-tuned on all of BUS-BRA: ``cnn`` with the standard augmentation (the study-2 run's CNN),
    ``cnn_shift`` with ``augment: scanner_shift`` (``cnn_oof.py --augment scanner_shift``; only when
    its files exist)."""
    p = pd.read_csv(WORK / "results" / "study2" / "tables" / "predictions.csv", dtype={"case_id": str})
    p = p[(p["cohort"] == "external") & (p["model"] == "cnn_efficientnet_lite0")].set_index("case_id")["probability"]
    p = p.loc[test].clip(1e-12, 1 - 1e-12)
    out = {"cnn": (_logits("cnn_oof.csv").loc[train].to_numpy(), np.log(p / (1 - p)).to_numpy())}
    if (WORK / "cnn_breast_scanner_shift.csv").exists():
        out["cnn_shift"] = (_logits("cnn_oof_scanner_shift.csv").loc[train].to_numpy(),
                            _logits("cnn_breast_scanner_shift.csv").loc[test].to_numpy())
    return out


def dlft_scores(train, test) -> dict:
    """The DL-score on the pooled features of the scanner-shift fine-tuned Lite0 (``cnn_oof.py
    --augment scanner_shift --dl-score``): out of fold on BUS-BRA, and on BrEaST from the trunk
    fine-tuned on all of BUS-BRA."""
    return {"dl_ft": (_logits("dlft_oof_scanner_shift.csv", "score").loc[train].to_numpy(),
                      _logits("dlft_breast_scanner_shift.csv", "score").loc[test].to_numpy())}


def _inside_row(label: str, y: pd.Series, oof: pd.Series, held_out: pd.DataFrame, column: str) -> dict:
    """3-fold out-of-fold AUC and leave-one-scanner-out AUC (pooled, worst, per scanner) of one score."""
    per = {s: roc_auc_ci(y.loc[g["case_id"]].to_numpy(), g[column].to_numpy()).auc
           for s, g in held_out.groupby("scanner")}
    return {"score": label, "oof_auc": roc_auc_ci(y.loc[oof.index].to_numpy(), oof.to_numpy()).auc,
            "loso_pooled_auc": roc_auc_ci(y.loc[held_out["case_id"]].to_numpy(), held_out[column].to_numpy()).auc,
            "loso_worst_auc": min(per.values()), **{f"loso_{s}": v for s, v in per.items()}}


def dlft_inside(cases, tables, inner: int, jobs: int) -> pd.DataFrame:
    """Inside BUS-BRA (BrEaST not used): the frozen Lite0 DL-score, the scanner-shift fine-tuned
    Lite0's logit and the DL-score on that CNN's pooled features, each out of fold and leave one
    scanner out (the last two from the same fine-tunes)."""
    bus = cases[cases["center"] != "PL-Warsaw"]
    y = bus["label"].astype(int)
    groups = bus["patient_id"].astype(str).to_numpy()
    centers = bus["center"].astype(str).to_numpy()
    X = tables["dl"].loc[bus.index]
    oof, _ = base_scores("dl", None, X, y.to_numpy(), groups, centers, X.iloc[:1], inner, jobs)
    held_out = []
    for scanner in sorted(bus["center"].unique()):
        fit = centers != scanner
        model = fit_base("dl", None, X[fit], y.to_numpy()[fit], groups[fit], centers[fit])
        held_out.append(pd.DataFrame({"case_id": bus.index[~fit], "scanner": scanner,
                                      "score": model.decision_function(X[~fit])}))
    rows = [_inside_row("frozen Lite0 DL-score (today)", y, pd.Series(oof, index=bus.index), pd.concat(held_out), "score")]
    for label, stem, column in (("fine-tuned Lite0, its logit", "cnn", "logit"),
                                ("DL-score on the fine-tuned Lite0's features", "dlft", "score")):
        rows.append(_inside_row(label, y, _logits(f"{stem}_oof_scanner_shift.csv", column),
                                pd.read_csv(WORK / f"{stem}_loso_scanner_shift.csv", dtype={"case_id": str}), column))
    return pd.DataFrame(rows)


def cnn_inside(cases) -> pd.DataFrame:
    """The fine-tuned CNN alone inside BUS-BRA, standard augmentation against scanner shift: AUC of
    its 3-fold out-of-fold logits and of its leave-one-scanner-out logits, pooled and per scanner
    (``cnn_oof.py --split folds loso``). This is what decides the default of ``models.cnn.augment``."""
    y = cases["label"].astype(int)
    return pd.DataFrame([
        _inside_row(label, y, _logits(f"cnn_oof{suffix}.csv"),
                    pd.read_csv(WORK / f"cnn_loso{suffix}.csv", dtype={"case_id": str}), "logit")
        for label, suffix in (("standard (augment: true)", ""), ("scanner shift (augment: scanner_shift)", "_scanner_shift"))])


def breast_rows(cases, preds, loso_rows, test, today, reference, plain=None, stacks=STACKS) -> pd.DataFrame:
    """BrEaST AUC with DeLong CI, paired DeLong against today's model of the same kind, the simple
    stack and the fine BI-RADS grading, and (``plain``) against the same candidate without the option."""
    y = cases.loc[test, "label"].astype(int).to_numpy()
    rows = []
    for name, p in preds.items():
        a = roc_auc_ci(y, p)
        d = delong_test(y, p, today["birads" if stacks[name][1] else "image"][1])
        cal = calibration_intercept_slope(y, p)
        fine = delong_test(y, p, cases.loc[test, "birads_fine"].astype(float).to_numpy())
        simple = delong_test(y, p, reference)
        row = {"candidate": name, **loso_rows.loc[name].to_dict(), "breast_auc": a.auc, "breast_low": a.low,
               "breast_high": a.high, "vs_today_diff": d.difference, "vs_today_p": d.p_value,
               "vs_simple_diff": simple.difference, "vs_simple_p": simple.p_value,
               "vs_fine_birads_diff": fine.difference, "vs_fine_birads_p": fine.p_value,
               "slope": float(cal.loc["slope", "estimate"]), "intercept": float(cal.loc["intercept", "estimate"])}
        if plain is not None:
            same = delong_test(y, p, plain[name])
            row.update({"vs_plain_auc": roc_auc_ci(y, plain[name]).auc, "vs_plain_diff": same.difference,
                        "vs_plain_p": same.p_value})
        rows.append(row)
    return pd.DataFrame(rows)


VARIANTS = {  # --set name -> (section title, what was done; the command is added)
    "site": (
        "Transductive: per-site standardization with the new site's unlabeled images",
        "Reported apart from the inductive results above, because it uses the target site's unlabeled "
        "features: every feature is z-scored within its own site, the training scanners by their own rows, "
        "the held-out scanner (LOSO) and BrEaST by all of their own images (no label). A deployment has "
        "this once it has scanned a batch of patients."),
    "standardized": (
        "Image standardization before features: gray levels relative to the surrounding tissue",
        "Each image's gray levels are z-scored by the median and IQR-SD of a ring of tissue around its "
        "lesion (`standardize_images.py`: that image's own pixels, nothing learnt across cases, so it is "
        "inductive), then PyRadiomics runs with sonorad's default parameter file. The DL-score keeps the "
        "original images' frozen Lite0 features."),
    "ensemble": (
        "The Lite0/1/2 ensemble: one DL-score per frozen backbone, stacked",
        "Three DL-scores (LASSO over the frozen features of EfficientNet-Lite0, -Lite1 and -Lite2, each "
        "`DLScore` with its defaults) enter the logistic stack as separate out-of-fold inputs. 'same "
        "without' is the candidate with the Lite0 DL-score only."),
    "cnn": (
        "The fine-tuned CNN as a stacked score",
        "The study-2 run's fine-tuned EfficientNet-Lite0 (10 epochs, `models.cnn`) enters the logistic "
        "stack as a score: its out-of-fold logit on BUS-BRA (`cnn_oof.py`: the same CNN fine-tuned on two "
        "of three patient-grouped folds, scoring the third) and, on BrEaST, the logit of the CNN "
        "fine-tuned on all of BUS-BRA. No LOSO: it would need four more fine-tunes (about 25 min on 2 "
        "cores), so the LOSO columns are left out. Cost: 14 min for the three fine-tunes (`cnn_oof.py`). 'same without' is the candidate without the CNN "
        "(for the CNN alone, the Lite0 DL-score)."),
    "lasso_stable": (
        "Site-robust selection: features the LASSO keeps whichever training scanner is left out",
        "Before the Rad-score, one Rad-score is fitted per training scanner on the rows of the other "
        "scanners, and only the features selected by every one of those LASSOs are kept "
        "(`ScannerStableLasso`, training rows only; inside LOSO the three training scanners take turns). "
        "Then the Rad-score is fitted on them as today. The DL-score is today's. 'same without' is the "
        "candidate with today's Rad-score."),
    "cnn_shift": (
        "Scanner-shift augmentation while fine-tuning the CNN",
        "EfficientNet-Lite0 fine-tuned as in the study-2 run but with `models.cnn.augment: scanner_shift` "
        "(per image: log-compression, gain offset, time-gain compensation, resolution loss, speckle grain; "
        "`sonorad.deep.finetune.scanner_shift_batch`), entered into the same stacks as the standard CNN "
        "of the previous section: out of fold on BUS-BRA and, on BrEaST, fine-tuned on all of BUS-BRA "
        "(`cnn_oof.py --augment scanner_shift --split folds all loso`). The stacks have no LOSO columns "
        "(each would need nested fine-tunes); the CNN alone is scored inside BUS-BRA in the table after "
        "this one, and that table, not BrEaST, decides the default. 'same without' is the same "
        "candidate with the standard CNN."),
    "dl_ft": (
        "Fine-tuned CNN features in the DL-score",
        "The DL-score (`DLScore`, its defaults) is fitted on the pooled features of EfficientNet-Lite0 "
        "fine-tuned with sonorad's default recipe (10 epochs, `augment: scanner_shift`) instead of the "
        "frozen ones (`cnn_oof.py --augment scanner_shift --split folds all loso --dl-score`): each "
        "fine-tune's DL-score is fitted on the rows that fine-tune trained on and scores the others, out "
        "of fold on BUS-BRA and, on BrEaST, from the trunk fine-tuned on all of BUS-BRA. The stacks "
        "have no LOSO columns (nested fine-tunes); the scores alone are compared inside BUS-BRA in the "
        "table after this one. 'same without' is the candidate with the frozen Lite0 DL-score."),
    "bins": (
        "Speckle-robust gray-level binning: bin width 10 instead of 5",
        "PyRadiomics runs with sonorad's default parameter file except `binWidth: 10` "
        "(`params_binwidth10.yaml`: half as many gray levels in the texture matrices, so speckle moves "
        "fewer pixels across bins), then the Rad-score is fitted as today. The DL-score keeps the "
        "Lite0 features."),
    "tta": (
        "Test-time augmentation and context crops for the frozen Lite0 features",
        "The DL-score is fitted on averaged Lite0 embeddings (`tta_features.py`; nothing learnt, so it is "
        "inductive): 'flip', the mean of the lesion crop's embedding and its left-right mirror's; 'context', "
        "the mean of the embeddings of the crop with margin 0.1 (sonorad's default) and with margin 0.3. "
        "'same without' is the candidate with today's Lite0 DL-score."),
}


def markdown_inside(inside: pd.DataFrame, title: str, first: str) -> list[str]:
    """A table of :func:`_inside_row` rows as markdown lines; ``first``: the header of the label column."""
    scanners = _scanner_columns(inside)
    header = [first, "3-fold out-of-fold AUC", "LOSO pooled AUC", "LOSO worst scanner", *(c[5:] for c in scanners)]
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in inside.iterrows():
        cells = [r.score, *(f"{r[c]:.3f}" for c in ("oof_auc", "loso_pooled_auc", "loso_worst_auc", *scanners))]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


#: --set name -> (its table of scores alone inside BUS-BRA, the table's title, its label column)
INSIDE_TABLES = {
    "cnn_shift": ("generalization_cnn_inside.csv",
                  "The fine-tuned CNN alone inside BUS-BRA (its logit; BrEaST not used):", "augmentation"),
    "dl_ft": ("generalization_dlft_inside.csv", "Each score alone inside BUS-BRA (BrEaST not used):", "score"),
}


def markdown_variant(kind: str, out: pd.DataFrame, seconds: float) -> str:
    title, text = VARIANTS[kind]
    after = []
    if kind in INSIDE_TABLES and (WORK / INSIDE_TABLES[kind][0]).exists():
        name, heading, first = INSIDE_TABLES[kind]
        after = markdown_inside(pd.read_csv(WORK / name), heading, first)
    lines = candidate_table(out, [
        ("same without: AUC; diff, p", lambda r: f"{r.vs_plain_auc:.3f}; {_diff('plain')(r)}"),
        ("vs today: diff, p", _diff("today")), ("vs simple stack: diff, p", _diff("simple"))])
    return "\n".join([
        f"## {title}", "",
        f"`python benchmarks/breast_us/generalization.py --set {kind}` ({seconds / 60:.0f} min on 2 cores). "
        + text + " The candidate set was fixed before the run; each candidate was scored on BrEaST once. "
        "'same without' is the identical candidate on the unchanged features (paired DeLong); 'simple "
        "stack' is the inductive one of the first table.", "",
        *lines, "", *after])


#: ``--set run``: the study-1 design through ``sonorad run``: label -> (run folder, with BI-RADS).
#: ``study1`` is run_all.py's run (Lite0 DL-score); the others are bus_bra_to_breast_study1_lite012.yaml
#: and bus_bra_to_breast_image_lite012.yaml (one DL-score per frozen Lite0/1/2 backbone; the second
#: without BI-RADS).
RUNS = {"BI-RADS, Lite0 (today)": ("study1", True),
        "BI-RADS, Lite0/1/2, one DL-score each": ("study1_lite012", True),
        "image only, Lite0/1/2, one DL-score each": ("image_lite012", False)}
BASE_RUN = "BI-RADS, Lite0 (today)"


def _run_tables(run: str):
    tables = WORK / "results" / run / "tables"
    return (pd.read_csv(tables / "metrics.csv"),
            pd.read_csv(tables / "predictions.csv", dtype={"case_id": str}))


def _chosen(metrics) -> str:
    stage2 = metrics[(metrics["cohort"] == "external") & metrics["train_cv_auc"].notna()]
    return stage2.sort_values("train_cv_auc", ascending=False).iloc[0]["model"]


def run_rows(cases, test, today, reference) -> pd.DataFrame:
    """The candidates of the study-1 runs on BrEaST: the model chosen by tuning CV AUC, logistic
    regression and every score. Each is compared (paired DeLong) with its counterpart: with BI-RADS,
    the same model of the Lite0 run (its chosen model for the chosen one, its one DL-score for a
    DL-score); image only, today's image-only model (``today``) for the stage-2 models and the Lite0
    run's scores for the scores. Also against the simple stack (``reference``) and the fine BI-RADS grading."""
    y = cases.loc[test, "label"].astype(int).to_numpy()
    fine = cases.loc[test, "birads_fine"].astype(float).to_numpy()
    runs = {label: _run_tables(run) for label, (run, _) in RUNS.items()
            if (WORK / "results" / run / "tables" / "predictions.csv").exists()}
    base_metrics, base_preds = runs[BASE_RUN]

    def external(preds, model):
        p = preds[(preds["cohort"] == "external") & (preds["model"] == model)].set_index("case_id")["probability"]
        return p.loc[test].to_numpy()

    rows = []
    for label, (metrics, preds) in runs.items():
        with_birads = RUNS[label][1]
        chosen = _chosen(metrics)
        scores = [m for m in metrics["model"].unique() if m == "rad_score" or str(m).startswith("dl_score")]
        for model, role in [(chosen, "chosen by tuning CV"), ("logistic_regression", "LR"),
                            *((m, "score") for m in scores)]:
            p = external(preds, model)
            cv = metrics[(metrics["cohort"] == "training_cv") & (metrics["model"] == model)]["auc"]
            a = roc_auc_ci(y, p)
            cal = calibration_intercept_slope(y, p)
            if role == "score":
                base_name = "dl_score" if str(model).startswith("dl_score") else model
                base = (f"{base_name} (Lite0 run)", external(base_preds, base_name))
            elif with_birads:
                base_name = _chosen(base_metrics) if role == "chosen by tuning CV" else model
                base = (f"{base_name} (Lite0 run)", external(base_preds, base_name))
            else:
                base = today["image"]
            d = delong_test(y, p, base[1])
            row = {"run": label, "model": model, "role": role,
                   "train_cv_auc": float(cv.iloc[0]) if len(cv) else np.nan,
                   "breast_auc": a.auc, "breast_low": a.low, "breast_high": a.high,
                   "vs_base_model": base[0], "vs_base_diff": d.difference, "vs_base_p": d.p_value,
                   "slope": float(cal.loc["slope", "estimate"]), "intercept": float(cal.loc["intercept", "estimate"])}
            for key, other in (("simple", reference), ("fine_birads", fine)):
                t = delong_test(y, p, other)
                row.update({f"vs_{key}_diff": t.difference, f"vs_{key}_p": t.p_value})
            rows.append(row)
    return pd.DataFrame(rows)


def birads_shift(cases, train, test) -> pd.DataFrame:
    """Malignancy rate per coarse BI-RADS category at each site, and a BI-RADS-only logistic
    regression fitted on BUS-BRA, scored on BrEaST: the calibration a model inherits from BI-RADS."""
    rows = []
    for site, ids in (("BUS-BRA", train), ("BrEaST", test)):
        for k, g in cases.loc[ids].groupby("birads"):
            rows.append({"row": f"BI-RADS {k}", "site": site, "value": f"{int(g['label'].sum())}/{len(g)} = "
                                                                       f"{g['label'].mean():.3f}"})
    model = LogisticRegression(C=1e6, max_iter=10000).fit(cases.loc[train, ["birads"]].astype(float),
                                                          cases.loc[train, "label"].astype(int))
    y = cases.loc[test, "label"].astype(int).to_numpy()
    p = model.predict_proba(cases.loc[test, ["birads"]].astype(float))[:, 1]
    cal = calibration_intercept_slope(y, p)
    rows.append({"row": "BI-RADS-only LR (fitted on BUS-BRA)", "site": "BrEaST",
                 "value": f"AUC {roc_auc_ci(y, p).auc:.3f}, calibration intercept "
                          f"{cal.loc['intercept', 'estimate']:.2f}, slope {cal.loc['slope', 'estimate']:.2f}"})
    return pd.DataFrame(rows)


def markdown_birads(table: pd.DataFrame) -> list[str]:
    wide = table.pivot(index="row", columns="site", values="value").reindex(
        columns=["BUS-BRA", "BrEaST"]).reindex(list(dict.fromkeys(table["row"])))
    lines = ["| | BUS-BRA (malignant/lesions) | BrEaST |", "|---|---|---|"]
    lines += [f"| {row} | {'' if pd.isna(r['BUS-BRA']) else r['BUS-BRA']} | {r['BrEaST']} |" for row, r in wide.iterrows()]
    return ["Why risk is overestimated at BrEaST: the same coarse BI-RADS category carries less malignancy "
            "there, so even a model of BI-RADS alone, fitted on BUS-BRA, overestimates risk:", "", *lines, ""]


def markdown_runs(out: pd.DataFrame, seconds: float) -> str:
    cost = {label: json_cost(run) for label, (run, _) in RUNS.items()}
    header = ["run", "model", "", "training CV AUC (BUS-BRA, whole pipeline)", "BrEaST AUC (95% CI)",
              "vs counterpart: diff, p", "vs simple stack: diff, p", "vs fine BI-RADS: diff, p", "slope",
              "intercept"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in out.iterrows():
        same = "" if r.run == BASE_RUN else f"{r.vs_base_model}: {r.vs_base_diff:+.3f}, {r.vs_base_p:.2g}"
        lines.append("| " + " | ".join([
            r.run, r.model, r.role, "" if pd.isna(r.train_cv_auc) else f"{r.train_cv_auc:.3f}",
            f"{r.breast_auc:.3f} ({r.breast_low:.3f}-{r.breast_high:.3f})", same, _diff("simple")(r),
            _diff("fine_birads")(r), f"{r.slope:.2f}", f"{r.intercept:.2f}"]) + " |")
    costs = "; ".join(f"{label}: fit {c['fit']:.0f} s, training cross-validation {c['cv']:.0f} s"
                      for label, c in cost.items() if c)
    return "\n".join([
        "## The study-1 design through `sonorad run`: one DL-score per backbone", "",
        "`python benchmarks/breast_us/generalization.py --set run` "
        f"({seconds / 60:.0f} min on 2 cores), after `sonorad run` on `bus_bra_to_breast_study1_lite012.yaml` "
        "and `bus_bra_to_breast_image_lite012.yaml`. Every run is the full study-1 design (Rad-score, "
        "DL-score(s), the declared variables, stage-2 LASSO, every zoo model, the model chosen by its tuning "
        "CV AUC on BUS-BRA). The Lite0/1/2 runs extract frozen Lite0, Lite1 and Lite2 features and, with the "
        "default `models.dl_scores: per_backbone`, fit one DL-score per backbone, each a stage-2 predictor; "
        "the image-only run declares no variable. The candidate set (each run's chosen model, LR and scores) "
        "was fixed before the runs; each was scored on BrEaST once. 'counterpart': with BI-RADS, the same "
        "model of the Lite0 run; image only, today's image-only model (study 2 RadiomicsDL) for the stage-2 "
        "models. Training CV AUC: 3-fold patient-grouped cross-validation of the whole design on BUS-BRA. "
        f"Cost: {costs}.", "",
        *lines, "",
        *(markdown_birads(pd.read_csv(WORK / "generalization_birads.csv"))
          if (WORK / "generalization_birads.csv").exists() else [])])


def json_cost(run: str) -> dict | None:
    path = WORK / "results" / run / "tables" / "timings.csv"
    if not path.exists():
        return None
    t = pd.read_csv(path)
    t = dict(zip(t.iloc[:, 0], t.iloc[:, 1]))
    return {"fit": float(t.get("fit", np.nan)), "cv": float(t.get("training cross-validation", np.nan))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--inner", type=int, default=3, help="patient-grouped folds of the out-of-fold base scores")
    parser.add_argument("--set", choices=("inductive", *VARIANTS, "run"), default="inductive",
                        help="inductive: the candidates above; site: per-site standardization (transductive); "
                             "standardized: radiomics of the ring-standardized images (standardize_images.py); "
                             "bins: radiomics at bin width 10 (params_binwidth10.yaml); "
                             "ensemble: one DL-score per frozen backbone (Lite0, Lite1, Lite2); tta: flip- or "
                             "context-averaged Lite0 embeddings (tta_features.py); cnn: the fine-tuned Lite0 as a stacked "
                             "score (cnn_oof.py); lasso_stable: the Rad-score on the features selected whichever training scanner is "
                             "left out; cnn_shift: the same CNN fine-tuned with "
                             "scanner-shift augmentation (cnn_oof.py --augment scanner_shift); dl_ft: the DL-score "
                             "on that CNN's pooled features (cnn_oof.py ... --dl-score); run: the "
                             "study-1 runs with the Lite0 DL-score and with one DL-score per Lite0/1/2 backbone")
    args = parser.parse_args()
    cases, tables = load()
    t0 = time.perf_counter()
    train = cases.index[cases["center"] != "PL-Warsaw"]
    test = cases.index[cases["center"] == "PL-Warsaw"]
    today = todays_models(test)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.set == "run":
        simple = evaluate_split(cases, tables, train, test, [None], args.inner, args.jobs,
                                {"birads + dl (simple stack)": STACKS["birads + dl (simple stack)"]})[None]
        out = run_rows(cases, test, today, simple["birads + dl (simple stack)"])
        out["minutes"] = (time.perf_counter() - t0) / 60
        out.to_csv(WORK / "generalization_run.csv", index=False)
        birads_shift(cases, train, test).to_csv(WORK / "generalization_birads.csv", index=False)
    elif args.set == "inductive":
        # 1. tau of the scanner-stable filter: by the worst-scanner LOSO AUC of the stable Rad-score
        grid = loso(cases, tables, TAUS, args.inner, args.jobs)
        stable = grid[grid["candidate"] == "rad_stable"]
        print(stable.to_string(index=False), flush=True)
        tau = float(stable.sort_values(["loso_worst_auc", "loso_pooled_auc"], ascending=False).iloc[0]["tau"])
        chosen = grid[grid["tau"] == tau].set_index("candidate")
        # 2. BrEaST, once per candidate, with everything fitted on all of BUS-BRA
        preds = evaluate_split(cases, tables, train, test, [tau], args.inner, args.jobs)[tau]
        out = breast_rows(cases, preds, chosen, test, today, preds["birads + dl (simple stack)"])
        out["tau"] = tau
        out["minutes"] = (time.perf_counter() - t0) / 60
        out.to_csv(WORK / "generalization.csv", index=False)
        grid.to_csv(WORK / "generalization_tau_grid.csv", index=False)
    else:
        counterparts, given = None, None
        if args.set in ("cnn", "cnn_shift", "dl_ft", "tta", "ensemble", "lasso_stable"):  # candidate -> (spec, the same without)
            pairs = {"cnn": CNN_STACKS, "cnn_shift": CNN_SHIFT_STACKS, "dl_ft": DLFT_STACKS, "tta": TTA_STACKS,
                     "ensemble": ENSEMBLE_STACKS, "lasso_stable": LASSO_STABLE_STACKS}[args.set]
            stacks = {name: spec for name, (spec, _) in pairs.items()}
            counterparts = {name: without for name, (_, without) in pairs.items()}
        if args.set in ("cnn", "cnn_shift", "dl_ft", "ensemble"):
            changed = {**tables, **{kind: pd.read_parquet(WORK / "results" / f"dl_lite{k}" / "features" /
                                                        f"deep_efficientnet_lite{k}.parquet").loc[cases.index]
                                    for kind, k in (("dl1", 1), ("dl2", 2))}}
            if args.set in ("cnn", "cnn_shift"):
                given = cnn_scores(cases, train, test)
                tables = changed  # its counterparts need the Lite1/2 features too
            if args.set == "dl_ft":
                given, tables = dlft_scores(train, test), changed
            if args.set in INSIDE_TABLES:
                inside = cnn_inside(cases) if args.set == "cnn_shift" else dlft_inside(cases, tables, args.inner, args.jobs)
                inside.to_csv(WORK / INSIDE_TABLES[args.set][0], index=False)
        elif args.set == "lasso_stable":
            changed = tables
        elif args.set == "site":
            stacks, changed = SITE_STACKS, site_standardized(tables, cases["center"].astype(str))
        elif args.set == "tta":
            changed = {**tables, **{f"dl_{kind}": pd.read_parquet(WORK / "features_tta" / f"deep_lite0_{kind}.parquet")
                                    .loc[cases.index] for kind in ("flip", "context")}}
        else:
            stacks = STANDARDIZED_STACKS
            folder = "features_standardized" if args.set == "standardized" else "features_binwidth10"
            rad = pd.read_parquet(WORK / folder / "radiomics.parquet")
            changed = {"rad": rad.loc[cases.index], "dl": tables["dl"]}
        if args.set in ("cnn", "cnn_shift", "dl_ft"):  # no LOSO of the stacks: it needs nested fine-tunes
            grid = pd.DataFrame({"candidate": list(stacks)})
        else:
            grid = loso(cases, changed, [None], args.inner, args.jobs, stacks)
        preds = evaluate_split(cases, changed, train, test, [None], args.inner, args.jobs, stacks, given)[None]
        # the same candidates on the unchanged features (as in the inductive set), for paired tests;
        # the simple stack (BI-RADS + DL-score) is always the unchanged one
        plain = evaluate_split(cases, tables, train, test, [None], args.inner, args.jobs,
                               {**(counterparts or stacks),
                                "birads + dl (simple stack)": STACKS["birads + dl (simple stack)"]}, given)[None]
        out = breast_rows(cases, preds, grid.set_index("candidate"), test, today,
                          plain["birads + dl (simple stack)"], plain, stacks)
        out["minutes"] = (time.perf_counter() - t0) / 60
        out.to_csv(WORK / f"generalization_{args.set}.csv", index=False)
    print(out.to_string(index=False))
    write_report(today)
    print(f"total {time.perf_counter() - t0:.0f} s; written {HERE / 'GENERALIZATION.md'}")


def write_report(today: dict) -> None:
    """GENERALIZATION.md from every candidate set run so far, then the hand-kept reading of it."""
    parts = []
    if (WORK / "generalization.csv").exists():
        out = pd.read_csv(WORK / "generalization.csv")
        grid = pd.read_csv(WORK / "generalization_tau_grid.csv")
        parts.append(markdown(out, grid, float(out["tau"].iloc[0]), today, 60 * float(out["minutes"].iloc[0])))
    for kind in VARIANTS:
        if (WORK / f"generalization_{kind}.csv").exists():
            frame = pd.read_csv(WORK / f"generalization_{kind}.csv")
            parts.append(markdown_variant(kind, frame, 60 * float(frame["minutes"].iloc[0])))
    if (WORK / "generalization_run.csv").exists():
        frame = pd.read_csv(WORK / "generalization_run.csv")
        parts.append(markdown_runs(frame, 60 * float(frame["minutes"].iloc[0])))
    notes = HERE / "generalization_notes.md"  # the reading of the numbers, kept by hand
    (HERE / "GENERALIZATION.md").write_text("\n".join(parts) + ("\n" + notes.read_text() if notes.exists() else ""))


if __name__ == "__main__":
    main()
