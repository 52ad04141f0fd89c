"""Reclassification between an old and a new model: NRI (categorical and continuous) and IDI.

Formulas of Pencina et al. (2008, Stat Med 27:157-172; 2011, Stat Med 30:11-21). "Up" means the
new model moves a case to a higher risk category (categorical NRI) or simply gives it a higher
predicted risk (continuous, "category-free" NRI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._results import ResultMixin
from ._validate import check_labels, check_level, check_scores

__all__ = ["ReclassificationResult", "nri", "idi"]


@dataclass(frozen=True, repr=False)
class ReclassificationResult(ResultMixin):
    """NRI or IDI with its event / non-event components.

    Attributes
    ----------
    estimate, low, high : float
        Overall statistic and its Wald CI.
    z, p_value : float
        Test of the null hypothesis of no improvement (two-sided).
    table : pandas.DataFrame
        Rows for the overall statistic and its components; columns estimate, low, high, se.
    method : str
    level : float
    """

    estimate: float
    low: float
    high: float
    z: float
    p_value: float
    table: pd.DataFrame
    method: str
    level: float
    title = "Reclassification"

    def to_frame(self) -> pd.DataFrame:
        out = self.table.copy()
        out["p_value"] = np.nan
        out.iloc[0, out.columns.get_loc("p_value")] = self.p_value
        out["method"] = self.method
        return out

    def __repr__(self) -> str:
        return (f"ReclassificationResult({self.method}: {self.estimate:.4f} "
                f"[{self.low:.4f}, {self.high:.4f}], p={self.p_value:.4g})")


def _inputs(y_true, proba_old, proba_new):
    y = check_labels(y_true)
    old = check_scores(proba_old, len(y), name="proba_old", probability=True)
    new = check_scores(proba_new, len(y), name="proba_new", probability=True)
    return y, old, new


def nri(y_true, proba_old, proba_new, *, cutoffs=None, level: float = 0.95) -> ReclassificationResult:
    """Net reclassification improvement of ``proba_new`` over ``proba_old``.

    Parameters
    ----------
    y_true : array-like of 0/1
    proba_old, proba_new : array-like in [0, 1]
        Predicted risks of the reference and the new model for the same cases.
    cutoffs : sequence of float, optional
        Risk-category boundaries (e.g. ``[0.1, 0.3]`` for low/intermediate/high; a risk equal
        to a boundary goes to the upper category). ``None`` gives the continuous NRI.
    level : float
        Confidence level.

    Returns
    -------
    ReclassificationResult
        ``NRI = [P(up|event) - P(down|event)] + [P(down|non-event) - P(up|non-event)]``.
        ``z`` and ``p`` use Pencina's (2008) variance under the null,
        ``(P(up|e) + P(down|e)) / n_e + (P(up|ne) + P(down|ne)) / n_ne``; the CI uses the
        unrestricted multinomial variance ``(up + down - (up - down)^2) / n`` in each group.
    """
    y, old, new = _inputs(y_true, proba_old, proba_new)
    level = check_level(level)
    if cutoffs is None:
        move = np.sign(new - old)
        method = "continuous NRI"
    else:
        cuts = np.sort(np.asarray(cutoffs, dtype=float))
        if cuts.size == 0 or (cuts <= 0).any() or (cuts >= 1).any():
            raise ValueError(f"cutoffs must be risks strictly between 0 and 1; got {list(cutoffs)}.")
        move = np.sign(np.searchsorted(cuts, new, side="right")
                       - np.searchsorted(cuts, old, side="right"))
        method = f"categorical NRI (cut-offs {', '.join(f'{c:g}' for c in cuts)})"
    z_crit = stats.norm.ppf(1 - (1 - level) / 2)
    rows, null_var, est = [], 0.0, 0.0
    for label, grp, sign in (("events", y == 1, 1), ("non-events", y == 0, -1)):
        n = int(grp.sum())
        up = float((move[grp] > 0).mean())
        down = float((move[grp] < 0).mean())
        comp = sign * (up - down)
        var = (up + down - (up - down) ** 2) / n
        null_var += (up + down) / n
        est += comp
        se = np.sqrt(var)
        rows.append({"statistic": f"NRI {label}", "estimate": comp, "low": comp - z_crit * se,
                     "high": comp + z_crit * se, "se": se, "up": up, "down": down, "n": n})
    se_tot = float(np.sqrt(rows[0]["se"] ** 2 + rows[1]["se"] ** 2))
    z = est / np.sqrt(null_var) if null_var > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z))) if null_var > 0 else 1.0
    overall = {"statistic": "NRI", "estimate": est, "low": est - z_crit * se_tot,
               "high": est + z_crit * se_tot, "se": se_tot, "up": np.nan, "down": np.nan,
               "n": len(y)}
    table = pd.DataFrame([overall] + rows).set_index("statistic")
    return ReclassificationResult(float(est), float(overall["low"]), float(overall["high"]),
                                  float(z), p, table, method, level)


def idi(y_true, proba_old, proba_new, *, level: float = 0.95) -> ReclassificationResult:
    """Integrated discrimination improvement of ``proba_new`` over ``proba_old``.

    ``IDI = [mean(new - old) | event] - [mean(new - old) | non-event]`` (the gain in
    discrimination slope). SE as Pencina (2008): ``sqrt(se_e^2 + se_ne^2)`` where ``se_e`` is the
    standard error of the mean paired difference among events (and likewise for non-events).
    """
    y, old, new = _inputs(y_true, proba_old, proba_new)
    level = check_level(level)
    z_crit = stats.norm.ppf(1 - (1 - level) / 2)
    diff = new - old
    rows = []
    for label, grp in (("events", y == 1), ("non-events", y == 0)):
        d = diff[grp]
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        rows.append({"statistic": f"mean risk change, {label}", "estimate": float(d.mean()),
                     "se": se})
    est = rows[0]["estimate"] - rows[1]["estimate"]
    se_tot = float(np.hypot(rows[0]["se"], rows[1]["se"]))
    z = est / se_tot if se_tot > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z))) if se_tot > 0 else 1.0
    for r in rows:
        r["low"], r["high"] = r["estimate"] - z_crit * r["se"], r["estimate"] + z_crit * r["se"]
    slope_old = old[y == 1].mean() - old[y == 0].mean()
    slope_new = new[y == 1].mean() - new[y == 0].mean()
    overall = {"statistic": "IDI", "estimate": est, "low": est - z_crit * se_tot,
               "high": est + z_crit * se_tot, "se": se_tot}
    extra = [{"statistic": "discrimination slope, old", "estimate": float(slope_old)},
             {"statistic": "discrimination slope, new", "estimate": float(slope_new)}]
    table = pd.DataFrame([overall] + rows + extra).set_index("statistic")
    return ReclassificationResult(float(est), float(overall["low"]), float(overall["high"]),
                                  float(z), p, table, "IDI", level)
