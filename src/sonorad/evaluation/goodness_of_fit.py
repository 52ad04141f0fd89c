"""Hosmer-Lemeshow goodness-of-fit test, grouped as ``ResourceSelection::hoslem.test`` (deciles of risk).

Fewer than 3 groups is a result, not an error: the test is reported with ``computable=False`` and
the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._results import ResultMixin
from ._validate import check_labels, check_scores

__all__ = ["HosmerLemeshowResult", "hosmer_lemeshow"]


@dataclass(frozen=True, repr=False)
class HosmerLemeshowResult(ResultMixin):
    """Hosmer-Lemeshow goodness-of-fit test.

    Attributes
    ----------
    statistic : float
        Chi-square statistic summed over both outcome columns of every group (NaN when not
        computable).
    df : int or None
        Degrees of freedom: number of groups formed minus 2 (None when not computable).
    p_value : float
        Upper-tail chi-square probability.
    groups : pandas.DataFrame
        Per group: interval, n, observed/expected events and non-events.
    g : int
        Number of groups asked for.
    method : str
        The test and its grouping, in words.
    computable : bool
        False when fewer than 3 risk groups could be formed; ``reason`` says why.
    reason : str
    """

    statistic: float
    df: int | None
    p_value: float
    groups: pd.DataFrame
    g: int = 10
    method: str = "Hosmer-Lemeshow"
    computable: bool = True
    reason: str = ""
    title = "Hosmer-Lemeshow test"

    @property
    def n_groups(self) -> int:
        """Number of risk groups actually formed (fewer than ``g`` when risks are tied)."""
        return len(self.groups)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"statistic": "Hosmer-Lemeshow chi-square", "estimate": self.statistic,
                              "df": self.df, "p_value": self.p_value, "groups": self.n_groups,
                              "method": self.method, "computable": self.computable,
                              "reason": self.reason}]).set_index("statistic")

    def __repr__(self) -> str:
        if not self.computable:
            return f"HosmerLemeshowResult(not computable: {self.reason})"
        return f"HosmerLemeshowResult(X2={self.statistic:.4f}, df={self.df}, p={self.p_value:.4g})"


def _hl_grouping(g: int, n_groups: int) -> str:
    text = (f"Hosmer-Lemeshow, {g} groups cut at quantiles of the predicted risk "
            "(ResourceSelection::hoslem.test grouping), df = groups formed - 2")
    if n_groups != g:
        text += f"; {n_groups} groups formed because of tied risks"
    return text


def hosmer_lemeshow(y_true, proba, *, g: int = 10) -> HosmerLemeshowResult:
    """Hosmer-Lemeshow test with groups cut at quantiles of the predicted risk.

    Grouping as ``ResourceSelection::hoslem.test``: cut points are the unique
    ``quantile(proba, (0, 1/g, ..., 1))`` (linear interpolation, R type 7), intervals are closed on
    the right and the first one also on the left. The statistic is
    ``sum((O - E)^2 / E)`` over events and non-events of every group. ``df`` is the number of
    groups actually formed minus 2 (equal to ``g - 2`` unless tied risks merge quantiles, where
    ResourceSelection keeps ``g - 2``).

    When fewer than 3 groups can be formed (few distinct probabilities), the result is returned
    with ``computable=False`` and the reason instead of raising, so a statistics table goes on.
    A cell with 0 expected and 0 observed (a group of p = 0 or p = 1 predictions that came true)
    adds 0; a group of p = 0 with an event (or p = 1 with a non-event) adds an infinite term, so
    the statistic is ``inf`` and p = 0 (``hoslem.test`` returns NaN in both cases).

    Parameters
    ----------
    y_true : array-like of 0/1
    proba : array-like in [0, 1]
    g : int
        Number of risk groups (default 10, deciles).
    """
    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    if int(g) < 3:
        raise ValueError(f"g must be at least 3 groups; got {g}.")
    g = int(g)
    cuts = np.unique(np.quantile(p, np.linspace(0, 1, g + 1)))
    if len(cuts) < 2:
        cuts = np.array([cuts[0], cuts[0]])
    group = np.clip(np.searchsorted(cuts, p, side="left"), 1, len(cuts) - 1) - 1
    rows = []
    for k in range(len(cuts) - 1):
        m = group == k
        rows.append({
            "interval": f"{'[' if k == 0 else '('}{cuts[k]:.4g}, {cuts[k + 1]:.4g}]",
            "n": int(m.sum()), "observed_events": float(y[m].sum()),
            "expected_events": float(p[m].sum()), "observed_nonevents": float((1 - y[m]).sum()),
            "expected_nonevents": float((1 - p[m]).sum()),
        })
    tab = pd.DataFrame(rows)
    tab = tab[tab["n"] > 0].reset_index(drop=True)
    method = _hl_grouping(g, len(tab))
    if len(tab) < 3:
        distinct = len(np.unique(p))
        reason = (f"only {len(tab)} risk group(s) could be formed from {distinct} distinct "
                  "predicted probabilities; the test needs at least 3")
        return HosmerLemeshowResult(float("nan"), None, float("nan"), tab, g, method, False, reason)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = ((tab.observed_events - tab.expected_events) ** 2 / tab.expected_events
                 + (tab.observed_nonevents - tab.expected_nonevents) ** 2 / tab.expected_nonevents)
    chi2 = float(np.nansum(terms))
    df = len(tab) - 2
    return HosmerLemeshowResult(chi2, df, float(stats.chi2.sf(chi2, df)), tab, g, method)
