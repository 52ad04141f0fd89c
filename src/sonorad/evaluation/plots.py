"""Figures of evaluation results. Every function takes result objects (never raw predictions)
and returns a matplotlib ``Figure``; none calls ``plt.show()``.

The ROC, calibration, decision-curve and nomogram figures are plain ``matplotlib.figure.Figure``
objects (Agg canvas, no pyplot state), so the report layer can save them from any thread and
nothing accumulates. The SHAP figures are drawn by shap's own plotting functions, which use
pyplot; :func:`pyplot` is the one place that sets pyplot up (Agg unless a backend was already
chosen), and the caller should ``matplotlib.pyplot.close(fig)`` after saving.
"""

from __future__ import annotations

import textwrap

import numpy as np

__all__ = ["pyplot", "plot_roc", "plot_calibration", "plot_calibration_curves", "plot_decision_curve",
           "plot_nomogram", "plot_shap_beeswarm", "plot_shap_bar", "plot_shap_waterfall"]


def pyplot():
    """``matplotlib.pyplot``, set to the non-interactive Agg backend unless a backend was chosen.

    Figures of a run or a server are written to files, never shown, so the first use picks Agg
    (no display needed, safe in worker threads). A backend the user already chose (``MPLBACKEND``,
    ``matplotlib.use``, a matplotlibrc, or pyplot imported before) is left as it is.

    Returns
    -------
    module
        ``matplotlib.pyplot``.

    Examples
    --------
    >>> plt = pyplot()
    >>> fig = plt.figure(); plt.close(fig)
    """
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        chosen = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)()
        if chosen is None:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_axes(figsize, ax=None):
    """A fresh Figure + Axes without pyplot, or the figure of a given ``ax``."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def plot_roc(curves, *, title: str = "ROC curve", ax=None):
    """ROC curves with AUC (95% CI) in the legend.

    Parameters
    ----------
    curves : RocCurve or list of RocCurve
        From :func:`sonorad.evaluation.roc.roc_curve`.
    """
    curves = [curves] if not isinstance(curves, (list, tuple)) else list(curves)
    fig, ax = _new_axes((5, 5), ax)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6")
    for c in curves:
        a = c.auc
        # straight segments between ROC points: tied scores give the diagonal pieces whose
        # trapezoid area is the AUC with ties counted 1/2
        ax.plot(c.fpr, c.tpr,
                label=f"{c.name}: AUC {a.auc:.3f} ({a.level:.0%} CI {a.low:.3f}-{a.high:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - Specificity", ylabel="Sensitivity", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_calibration(results, *, title: str = "Calibration", ax=None):
    """Calibration plot: binned observed fraction with CIs, LOWESS curve and the ideal line.

    Parameters
    ----------
    results : CalibrationResult or list of CalibrationResult
    """
    results = [results] if not isinstance(results, (list, tuple)) else list(results)
    fig, ax = _new_axes((5, 5), ax)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="Ideal")
    for r in results:
        b = r.bins
        sl = r.intercept_slope
        label = (f"{r.name}: slope {sl.loc['slope', 'estimate']:.2f}, calibration-in-the-large "
                 f"{sl.loc['calibration-in-the-large', 'estimate']:.2f}, Brier {r.brier:.3f}")
        line, = ax.plot(r.smoothed["predicted"], r.smoothed["observed"], lw=1.5, label=label)
        ax.errorbar(b["mean_predicted"], b["observed"],
                    yerr=np.clip([b["observed"] - b["low"], b["high"] - b["observed"]], 0, None),
                    fmt="o", ms=4, color=line.get_color(), capsize=2, lw=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Predicted probability", ylabel="Observed fraction",
           title=title)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def plot_calibration_curves(results, *, colors=None, risk_distribution=None, title: str = "Calibration",
                            ax=None):
    """Smoothed calibration curves with their binned points, and the spread of the predictions.

    The compact calibration figure of a before / after comparison (e.g. a site recalibration):
    for each result, the LOWESS curve labelled with its calibration slope, intercept and Brier
    score, and the binned observed fractions as dots (no CIs); optionally a spike histogram of
    predicted probabilities along the bottom (events upward, non-events downward).

    Parameters
    ----------
    results : CalibrationResult or list of CalibrationResult
        From :func:`sonorad.evaluation.calibration.calibration`; ``name`` is the legend label.
    colors : sequence of str, optional
        One matplotlib color per result (default: the color cycle).
    risk_distribution : (array-like, array-like), optional
        ``(y_true, proba)`` whose predictions are drawn as spikes: 100 bins over [0, 1], heights
        scaled to the tallest bin of each outcome.
    title : str
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new 5 x 5 inch figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    results = [results] if not isinstance(results, (list, tuple)) else list(results)
    colors = list(colors) if colors is not None else [None] * len(results)
    if len(colors) != len(results):
        raise ValueError(f"colors: give one color per result ({len(results)}), got {len(colors)}")
    fig, ax = _new_axes((5, 5), ax)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="Ideal")
    for r, color in zip(results, colors):
        st = r.statistics.to_row()
        line, = ax.plot(r.smoothed["predicted"], r.smoothed["observed"], color=color, lw=1.6,
                        label=f"{r.name}: slope {st['slope']:.2f}, intercept {st['intercept']:.2f}, "
                              f"Brier {st['brier']:.3f}")
        b = r.bins
        ax.plot(b["mean_predicted"], b["observed"], "o", ms=3, color=line.get_color())
    if risk_distribution is not None:
        y, proba = (np.asarray(v) for v in risk_distribution)
        bins = np.linspace(0, 1, 101)
        for outcome, sign, color in ((1, 1, "#c44e52"), (0, -1, "0.35")):
            counts, _ = np.histogram(proba[y == outcome], bins=bins)
            if counts.max() > 0:
                ax.vlines(bins[:-1] + 0.005, 0.08, 0.08 + sign * 0.08 * counts / counts.max(), color=color, lw=0.7)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Predicted probability", ylabel="Observed fraction", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


def plot_decision_curve(result, *, ylim=None, title: str = "Decision curve", ax=None):
    """Net benefit against threshold probability for every model, treat-all and treat-none.

    Parameters
    ----------
    result : DecisionCurveResult
    ylim : (float, float), optional
        Default: from slightly below 0 to a little above the prevalence.
    """
    fig, ax = _new_axes((6, 4.5), ax)
    wide = result.wide()
    for name in result.models:
        style = {"Treat all": dict(color="0.4", lw=1, ls="-"),
                 "Treat none": dict(color="0.0", lw=1, ls="-")}.get(name, dict(lw=1.6))
        ax.plot(wide.index, wide[name], label=name, **style)
    top = result.prevalence
    ax.set_ylim(ylim if ylim is not None else (-0.05 * max(top, 0.2), top * 1.15 + 0.01))
    ax.set(xlim=(wide.index.min(), wide.index.max()), xlabel="Threshold probability",
           ylabel="Net benefit", title=title)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _axis_line(ax, y, x0, x1):
    ax.plot([x0, x1], [y, y], color="black", lw=0.9, solid_capstyle="butt")


def _ticks(ax, y, xs, labels, size=7, up=False):
    for i, (x, lab) in enumerate(zip(xs, labels)):
        ax.plot([x, x], [y, y + (0.12 if up else -0.12)], color="black", lw=0.8)
        ax.text(x, y + (0.18 if up else -0.2), lab, ha="center", va="bottom" if up else "top",
                fontsize=size)


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:g}"
    return str(v)


def plot_nomogram(nomogram, *, probabilities=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75,
                                             0.9, 0.95, 0.99),
                  n_ticks: int = 6, title: str | None = None, labels: dict | None = None):
    """Publication-style nomogram: a points scale, one scale per predictor, total points and
    predicted probability.

    Parameters
    ----------
    nomogram : Nomogram
        From :func:`sonorad.explain.nomogram.build_nomogram`.
    probabilities : sequence of float
        Probabilities marked on the bottom scale (those outside the reachable range are
        dropped).
    n_ticks : int
        Approximate number of ticks per numeric predictor.
    labels : dict or None
        Predictor name -> the label drawn for it (e.g. the study file's ``description``).
    """
    from matplotlib.ticker import MaxNLocator

    names = dict(labels or {})

    # a predictor the model gives no weight (dropped by a selection step) scores 0 points for
    # every value; it is named in a footnote instead of drawn as a zero-length scale
    axes = [a for a in nomogram.axes if np.ptp(a.contrib) > 0]
    unused = [names.get(a.name, a.name) for a in nomogram.axes if np.ptp(a.contrib) == 0]
    rows = len(axes) + 3 + (1 if unused else 0)
    fig, ax = _new_axes((8, 0.65 * rows + 0.8))
    ax.set_xlim(-28, 104)
    ax.set_ylim(-rows + 0.3, 1.0)
    ax.axis("off")
    y = 0.0
    ax.text(-27, y, "Points", ha="left", va="center", fontsize=9, weight="bold")
    _axis_line(ax, y, 0, 100)
    _ticks(ax, y, np.arange(0, 101, 10), [str(v) for v in range(0, 101, 10)], up=True)
    for a in axes:
        y -= 1
        label = textwrap.fill(names.get(a.name, a.name), 30)  # a long description wraps in the label column
        ax.text(-27, y, label, ha="left", va="center", fontsize=9 if "\n" not in label else 7, linespacing=1.0)
        if a.kind == "categorical":
            xs = nomogram.points_scale(a.name, a.values)
            labels = [_fmt(v) for v in a.values]
        else:
            lo, hi = float(a.values.min()), float(a.values.max())
            vals = [v for v in MaxNLocator(n_ticks).tick_values(lo, hi) if lo - 1e-12 <= v <= hi + 1e-12]
            vals = sorted(set([lo, hi] + vals)) if len(vals) < 2 else vals
            xs = nomogram.points_scale(a.name, vals)
            labels = [_fmt(round(v, 10)) for v in vals]
        # the scale spans the predictor's whole range, not just its labelled ticks
        ends = nomogram.points_scale(a.name, a.values if a.kind == "categorical" else [lo, hi])
        _axis_line(ax, y, float(np.min(ends)), float(np.max(ends)))
        _ticks(ax, y, xs, labels)
    total_max = nomogram.max_total_points
    scale = 100.0 / total_max
    y -= 1.3
    ax.text(-27, y, "Total points", ha="left", va="center", fontsize=9, weight="bold")
    tvals = MaxNLocator(10).tick_values(0, total_max)
    tvals = [v for v in tvals if 0 <= v <= total_max + 1e-9]
    _axis_line(ax, y, 0, 100)
    _ticks(ax, y, np.array(tvals) * scale, [_fmt(v) for v in tvals])
    y -= 1
    ax.text(-27, y, "Probability", ha="left", va="center", fontsize=9, weight="bold")
    probs = np.asarray(probabilities, dtype=float)
    tp = nomogram.probability_to_total_points(probs)
    keep = (tp >= 0) & (tp <= total_max)
    if keep.sum() >= 1:
        xs = tp[keep] * scale
        _axis_line(ax, y, float(xs.min()), float(xs.max()))
        _ticks(ax, y, xs, [_fmt(p) for p in probs[keep]])
    if unused:
        ax.text(-27, y - 0.8, f"Not in the model (0 points): {', '.join(unused)}", ha="left", va="center",
                fontsize=7, style="italic")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _shap_fig(draw, result, **kwargs):
    plt = pyplot()
    plt.figure()
    draw(result.to_explanation(), show=False, **kwargs)
    fig = plt.gcf()
    unit = "SHAP value (impact on log-odds)" if result.output == "log-odds" else \
        "SHAP value (impact on predicted probability)"
    fig.axes[0].set_xlabel(unit)
    fig.tight_layout()
    return fig


def plot_shap_beeswarm(result, *, max_display: int = 15):
    """Beeswarm summary of a :class:`~sonorad.explain.shap.ShapResult`."""
    import shap

    return _shap_fig(shap.plots.beeswarm, result, max_display=max_display)


def plot_shap_bar(result, *, max_display: int = 15):
    """Mean |SHAP| bar chart of a :class:`~sonorad.explain.shap.ShapResult`."""
    import shap

    plt = pyplot()
    plt.figure()
    shap.plots.bar(result.to_explanation(), max_display=max_display, show=False)
    fig = plt.gcf()
    fig.tight_layout()
    return fig


def plot_shap_waterfall(result, case, *, max_display: int = 12):
    """Waterfall of one case: from the expected output to the case's output, feature by feature.

    Parameters
    ----------
    result : ShapResult
    case : case id (an entry of ``result.case_ids``)
    """
    import shap

    if case not in result.case_ids:
        raise ValueError(f"case {case!r} was not explained; explained cases: {result.case_ids[:5]}...")
    i = result.case_ids.index(case)
    plt = pyplot()
    plt.figure()
    shap.plots.waterfall(result.to_explanation()[i], max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle(f"case {case} ({result.output})", fontsize=9)
    fig.tight_layout()
    return fig
