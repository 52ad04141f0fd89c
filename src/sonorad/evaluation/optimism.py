"""Bootstrap optimism-corrected internal validation (Harrell's method, as ``rms::validate`` and
``rms::calibrate`` do it).

The whole modelling pipeline is refitted in every bootstrap sample of *patients* (all rows of a
drawn patient come along, a patient drawn twice comes twice). For each index (AUC, calibration
intercept and slope, Brier score):

* ``apparent``: the model fitted on all training data, evaluated on the same data;
* ``training``: mean over resamples of the bootstrap model evaluated on its bootstrap sample;
* ``test``: mean over resamples of the bootstrap model evaluated on the original data;
* ``optimism = training - test`` and ``corrected = apparent - optimism``.

The bias-corrected calibration curve follows ``rms::calibrate``: on a grid of 50 predicted
probabilities from the 5th smallest to the 5th largest apparent prediction, the lowess curve of
outcome on prediction (R's ``lowess(p, y, iter = 0)``) is computed for the apparent fit, and for
each bootstrap model on its own sample and on the original data; the curve's optimism is
subtracted from the apparent curve.

Every resample draws its patients from its own random stream,
``SeedSequence(random_state, spawn_key=(b,))``, so the numbers do not depend on ``n_jobs``, on
the order in which workers finish, or on whether the run was interrupted and resumed from its
checkpoint folder.

References
----------
Harrell FE, Lee KL, Mark DB (1996). Stat Med 15:361-387.
Steyerberg EW (2019). Clinical Prediction Models, 2nd ed., ch. 17.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from sonorad.provenance import write_json_atomic

from ._results import ResultMixin
from ._validate import check_labels

__all__ = ["BootstrapValidation", "bootstrap_validation"]

#: Indexes validated, in the order of the result table.
INDEXES = ("AUC", "Intercept", "Slope", "Brier")
#: Points of the calibration grid (``rms::calibrate``'s default).
GRID_POINTS = 50


@dataclass(frozen=True, repr=False)
class BootstrapValidation(ResultMixin):
    """Optimism-corrected indexes and calibration curve.

    Attributes
    ----------
    table : pandas.DataFrame
        Index AUC, Intercept, Slope, Brier; columns apparent, training, test, optimism,
        corrected, n (resamples in which the index could be computed), as ``rms::validate``.
    calibration : pandas.DataFrame
        Columns predicted (grid), apparent, optimism, corrected (bias-corrected observed
        probability), n (resamples contributing at that grid point), as ``rms::calibrate``.
    mean_absolute_error, e90 : float
        Mean and 90th percentile of |corrected - predicted| over the grid (rms prints both).
    n_resamples : int
        Resamples asked for.
    failures : dict
        Resample -> why it was not used (one outcome class in the sample, a failed fit).
    random_state : int
    """

    table: pd.DataFrame
    calibration: pd.DataFrame
    mean_absolute_error: float
    e90: float
    n_resamples: int
    failures: dict = field(default_factory=dict)
    random_state: int = 0
    title = "Bootstrap optimism-corrected validation"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def corrected_auc(self) -> float:
        return float(self.table.loc["AUC", "corrected"])

    def __repr__(self) -> str:
        t = self.table
        return (f"BootstrapValidation(B={self.n_resamples}, AUC apparent={t.loc['AUC', 'apparent']:.4f}, "
                f"optimism={t.loc['AUC', 'optimism']:.4f}, corrected={t.loc['AUC', 'corrected']:.4f})")


# --- indexes ------------------------------------------------------------------------------------

def _indexes(y: np.ndarray, p: np.ndarray) -> dict:
    """AUC, joint-fit calibration intercept and slope, Brier; NaN where not computable."""
    import warnings

    from .recalibration import calibration_intercept_slope
    from .roc import auc_score

    if y.min() == y.max():
        return {k: np.nan for k in INDEXES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # separation: NaN slope, counted in n
        recal = calibration_intercept_slope(y, p)
    return {"AUC": auc_score(y, p), "Intercept": float(recal.loc["intercept", "estimate"]),
            "Slope": float(recal.loc["slope", "estimate"]), "Brier": float(np.mean((p - y) ** 2))}


def _curve(y: np.ndarray, p: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Lowess calibration curve at ``grid`` (NaN outside the range of ``p``, as R's approx)."""
    from .valprob import r_lowess

    if np.ptp(p) == 0:
        return np.full(len(grid), np.nan)
    fitted = r_lowess(y.astype(float), p)
    xs, inverse = np.unique(p, return_inverse=True)
    fs = np.bincount(inverse, weights=fitted) / np.bincount(inverse)   # approx(ties = mean)
    out = np.interp(grid, xs, fs)
    out[(grid < xs[0]) | (grid > xs[-1])] = np.nan
    return out


def _calibration_grid(p: np.ndarray) -> np.ndarray:
    """50 points from the 5th smallest to the 5th largest apparent prediction (``rms::calibrate``'s
    ``predy``; the whole range when n <= 10)."""
    s = np.sort(p)
    lo, hi = (s[4], s[-5]) if len(s) > 10 else (s[0], s[-1])
    return np.linspace(lo, hi, GRID_POINTS)


# --- resampling ----------------------------------------------------------------------------------

def _take(X, rows: np.ndarray):
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[rows]
    return np.asarray(X)[rows]


def _resample_rows(b: int, random_state: int, patient_rows: list) -> np.ndarray:
    """Rows of bootstrap sample ``b``: patients drawn with replacement, all their rows."""
    rng = np.random.default_rng(np.random.SeedSequence(random_state, spawn_key=(b,)))
    drawn = rng.integers(0, len(patient_rows), len(patient_rows))
    return np.concatenate([patient_rows[i] for i in drawn])


def _check_proba(p, n: int, where: str) -> np.ndarray:
    p = np.asarray(p, dtype=float).ravel()
    if p.shape != (n,) or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError(f"fit_predict returned {p.shape[0]} values for {n} rows ({where}); it must "
                         "return one probability in [0, 1] per row of X_predict.")
    return p


def _one_resample(b, fit_predict, X, y, groups, patient_rows, random_state, grid, folder):
    rows = _resample_rows(b, random_state, patient_rows)
    yb = y[rows]
    if yb.min() == yb.max():
        record = {"b": b, "failed": f"the bootstrap sample has one outcome class (all {int(yb[0])})"}
    else:
        p_orig = _check_proba(fit_predict(_take(X, rows), yb, groups[rows], X), len(y),
                              f"resample {b}")
        p_boot = p_orig[rows]     # a bootstrap row is a copy of an original row
        record = {"b": b, "training": _indexes(yb, p_boot), "test": _indexes(y, p_orig),
                  "curve_training": _curve(yb, p_boot, grid).tolist(),
                  "curve_test": _curve(y, p_orig, grid).tolist()}
    if folder is not None:
        write_json_atomic(folder / f"resample_{b:05d}.json", record, allow_nan=True)
    return record


# --- checkpoint ------------------------------------------------------------------------------------

def _fingerprint(X, y, groups, random_state, p_apparent) -> str:
    """Hash of what the resamples depend on: data, patients, seed and the pipeline (through its
    apparent predictions)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(p_apparent).tobytes())
    if isinstance(X, pd.DataFrame):
        h.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
        h.update(",".join(map(str, X.columns)).encode())
    else:
        h.update(np.ascontiguousarray(np.asarray(X, dtype=float)).tobytes())
    h.update(y.astype(np.int64).tobytes())
    h.update("\x1f".join(map(str, groups)).encode())
    h.update(str(int(random_state)).encode())
    return h.hexdigest()


def _open_checkpoint(folder, fingerprint: str):
    """The checkpoint folder and the resamples already done there (b -> record)."""
    if folder is None:
        return None, {}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    if manifest.exists():
        found = json.loads(manifest.read_text()).get("fingerprint")
        if found != fingerprint:
            raise ValueError(
                f"checkpoint folder {folder} belongs to another bootstrap run (different data, "
                "patients, seed or pipeline); pass an empty folder or delete it to start again.")
    else:
        write_json_atomic(manifest, {"fingerprint": fingerprint, "method": "bootstrap_validation"})
    done = {}
    for path in sorted(folder.glob("resample_*.json")):
        record = json.loads(path.read_text())
        done[int(record["b"])] = record
    return folder, done


# --- the validation ----------------------------------------------------------------------------------

def _summarise(apparent: dict, curve_apparent: np.ndarray, grid: np.ndarray, records: list,
               n_resamples: int, random_state: int) -> BootstrapValidation:
    ok = [r for r in records if "failed" not in r]
    failures = {r["b"]: r["failed"] for r in records if "failed" in r}
    train = pd.DataFrame([r["training"] for r in ok], columns=list(INDEXES), dtype=float)
    test = pd.DataFrame([r["test"] for r in ok], columns=list(INDEXES), dtype=float)
    diff = train - test                     # NaN where either side could not be computed
    rows = []
    for k in INDEXES:
        used = diff[k].notna()
        optimism = float(diff.loc[used, k].mean()) if used.any() else np.nan
        rows.append({"index": k, "apparent": apparent[k],
                     "training": float(train.loc[used, k].mean()) if used.any() else np.nan,
                     "test": float(test.loc[used, k].mean()) if used.any() else np.nan,
                     "optimism": optimism, "corrected": apparent[k] - optimism, "n": int(used.sum())})
    table = pd.DataFrame(rows).set_index("index")
    if ok:
        ct = np.array([r["curve_training"] for r in ok], dtype=float)
        cs = np.array([r["curve_test"] for r in ok], dtype=float)
        gaps = ct - cs
        n_at = np.sum(np.isfinite(gaps), axis=0)
        with np.errstate(invalid="ignore"):
            curve_opt = np.where(n_at > 0, np.nansum(gaps, axis=0) / np.maximum(n_at, 1), np.nan)
    else:
        n_at, curve_opt = np.zeros(len(grid), int), np.full(len(grid), np.nan)
    corrected = curve_apparent - curve_opt
    calib = pd.DataFrame({"predicted": grid, "apparent": curve_apparent, "optimism": curve_opt,
                          "corrected": corrected, "n": n_at})
    err = np.abs(corrected - grid)
    err = err[np.isfinite(err)]
    return BootstrapValidation(table, calib, float(err.mean()) if len(err) else np.nan,
                               float(np.quantile(err, 0.9)) if len(err) else np.nan,
                               int(n_resamples), failures, int(random_state))


def bootstrap_validation(fit_predict: Callable, X, y, groups=None, *, n_resamples: int = 200,
                         random_state: int = 0, n_jobs: int = 1, checkpoint=None,
                         progress: Callable | None = None) -> BootstrapValidation:
    """Harrell's bootstrap optimism correction of AUC, calibration intercept/slope and Brier.

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(X_train, y_train, groups_train, X_predict) -> proba``: fits the *whole*
        pipeline (selection, scaling, tuning, model) on the training rows and returns
        P(positive) for every row of ``X_predict`` (a 1-D array in [0, 1]). ``groups_train``
        holds the patient ids of the training rows; a patient drawn twice keeps its id, so an
        inner grouped CV keeps the copies together. A DataFrame ``X_train`` keeps the original
        index labels, so copies of a patient's rows repeat them. It must not depend on global state; with
        ``n_jobs > 1`` it is sent to worker processes (cloudpickle), so closures work.
    X : pandas.DataFrame or array-like, shape (n_rows, ...)
        Training data, passed to ``fit_predict`` by rows.
    y : array-like of 0/1, shape (n_rows,)
    groups : array-like, shape (n_rows,), optional
        Patient id of each row; patients are resampled, not rows. Default: one patient per row.
    n_resamples : int
        Bootstrap resamples (rms's ``B``; 200 or more for a paper).
    random_state : int
        Seed; resample ``b`` uses ``SeedSequence(random_state, spawn_key=(b,))``.
    n_jobs : int
        Parallel workers (joblib); the numbers do not depend on it.
    checkpoint : path-like, optional
        Folder where every finished resample is written; a rerun with the same folder, data and
        seed skips them, so an interrupted run resumes with identical numbers. A folder from a
        different run raises ``ValueError``. Increasing ``n_resamples`` reuses the done ones.
    progress : callable, optional
        ``progress(done, total)`` after each finished resample (e.g. to drive a progress bar).

    Returns
    -------
    BootstrapValidation
        ``table`` (apparent, training, test, optimism, corrected, n per index) and the
        bias-corrected ``calibration`` curve. Resamples with one outcome class are not used and
        are listed in ``failures``.
    """
    from joblib import Parallel, delayed

    y = check_labels(y)
    n = len(y)
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1; got {n_resamples}.")
    if (X.shape[0] if hasattr(X, "shape") else len(X)) != n:
        raise ValueError(f"X has {len(X)} rows but y has {n}; pass one label per row.")
    groups = np.arange(n) if groups is None else np.asarray(groups, dtype=object)
    if groups.shape != (n,) or pd.isna(groups).any():
        raise ValueError(f"groups must give one patient id per row ({n}), without missing values.")
    codes = pd.factorize(pd.Series(groups).astype(str))[0]
    patient_rows = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]

    p_app = _check_proba(fit_predict(X, y, groups, X), n, "apparent fit on all rows")
    apparent = _indexes(y, p_app)
    grid = _calibration_grid(p_app)
    curve_apparent = _curve(y, p_app, grid)

    folder, done = _open_checkpoint(checkpoint, _fingerprint(X, y, groups, random_state, p_app))
    todo = [b for b in range(int(n_resamples)) if b not in done]
    records = [done[b] for b in range(int(n_resamples)) if b in done]
    total = int(n_resamples)
    if progress is not None and records:
        progress(len(records), total)
    jobs = (delayed(_one_resample)(b, fit_predict, X, y, groups, patient_rows, random_state, grid, folder)
            for b in todo)
    for record in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
        records.append(record)
        if progress is not None:
            progress(len(records), total)
    records.sort(key=lambda r: r["b"])
    return _summarise(apparent, curve_apparent, grid, records, total, random_state)
