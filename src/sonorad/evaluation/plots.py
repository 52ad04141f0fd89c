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
           "decision_curve_limits", "supported_lowess", "plot_nomogram", "plot_shap_beeswarm", "plot_shap_bar",
           "plot_shap_waterfall", "LOWESS_COVERAGE", "DCA_MIN_NET_BENEFIT", "DCA_MAX_THRESHOLD"]

#: Central share of the predictions over which a LOWESS calibration curve is drawn: outside the
#: 2.5th-97.5th percentile of predicted risk the curve rests on a handful of cases and is not drawn.
LOWESS_COVERAGE = 0.95
#: Lowest net benefit shown by default on a decision curve, so that "treat all" stays visible where it
#: turns negative while the models' curves keep their scale (Vickers' convention).
DCA_MIN_NET_BENEFIT = -0.05
#: Default upper threshold probability of a decision curve (extended to a cut-off's neighbourhood).
DCA_MAX_THRESHOLD = 0.6


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
    fig, ax = _new_axes((5.5, 6.5), ax)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="Ideal")
    for r in results:
        b = r.bins
        sl = r.intercept_slope
        label = (f"{r.name}: slope {sl.loc['slope', 'estimate']:.2f}, calibration-in-the-large "
                 f"{sl.loc['calibration-in-the-large', 'estimate']:.2f}, Brier {r.brier:.3f}")
        smooth = supported_lowess(r.smoothed)
        line, = ax.plot(smooth["predicted"], smooth["observed"], lw=1.5, label=label)
        ax.errorbar(b["mean_predicted"], b["observed"],
                    yerr=np.clip([b["observed"] - b["low"], b["high"] - b["observed"]], 0, None),
                    fmt="o", ms=4, color=line.get_color(), capsize=2, lw=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Predicted probability", ylabel="Observed fraction",
           title=title)
    ax.set_aspect("equal")
    _legend_below(ax)
    fig.tight_layout()
    return fig


def _legend_below(ax) -> None:
    """The legend under the axes (readable size), where it cannot cover a curve."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False, ncol=1)


def supported_lowess(smoothed, coverage: float = LOWESS_COVERAGE):
    """The part of a LOWESS calibration curve that rests on data.

    ``smoothed`` has one row per case (``predicted``, ``observed``; R's ``lowess`` output), so the
    percentiles of ``predicted`` are those of the predictions. The curve is kept between the
    ``(1 - coverage) / 2`` and ``(1 + coverage) / 2`` quantiles of predicted risk (2.5th to 97.5th
    percentile by default): beyond them a few cases drive it. Binned points and the spike histogram
    still show every prediction.

    Parameters
    ----------
    smoothed : pandas.DataFrame
        ``CalibrationResult.smoothed``.
    coverage : float in (0, 1]

    Returns
    -------
    pandas.DataFrame
        The rows of ``smoothed`` inside the range (all rows when ``coverage`` is 1).
    """
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1]; got {coverage}")
    if coverage == 1 or len(smoothed) == 0:
        return smoothed
    p = np.asarray(smoothed["predicted"], dtype=float)
    lo, hi = np.nanquantile(p, [(1 - coverage) / 2, (1 + coverage) / 2])
    return smoothed[(p >= lo) & (p <= hi)]


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
    fig, ax = _new_axes((5.5, 6.5), ax)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="Ideal")
    for r, color in zip(results, colors):
        st = r.statistics.to_row()
        smooth = supported_lowess(r.smoothed)
        line, = ax.plot(smooth["predicted"], smooth["observed"], color=color, lw=1.6,
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
    _legend_below(ax)
    fig.tight_layout()
    return fig


def decision_curve_limits(result, *, cutoffs=None, full_range: bool = False):
    """Threshold and net-benefit ranges of a decision curve: ``((x0, x1), (y0, y1))``.

    By default the clinically relevant part: thresholds from the lowest computed one up to
    :data:`DCA_MAX_THRESHOLD` (0.6), or to 0.1 beyond the highest of ``cutoffs`` when that is
    higher (at most the highest threshold computed), and net benefit from
    :data:`DCA_MIN_NET_BENEFIT` (-0.05), where "treat all" is still visible, to a little above the
    prevalence (the largest net benefit possible). With ``full_range`` every computed threshold is
    shown and the net-benefit axis goes down to the lowest value of a model's curve (treat-all
    excepted, which falls without bound), so no curve leaves the plot.
    """
    wide = result.wide()
    first, last = float(wide.index.min()), float(wide.index.max())
    top = max(float(result.prevalence) * 1.15 + 0.01, 0.05)
    if full_range:
        models = wide[[m for m in wide.columns if m != "Treat all"]]
        low = float(np.nanmin(models.to_numpy())) if models.size else DCA_MIN_NET_BENEFIT
        return (first, last), (min(DCA_MIN_NET_BENEFIT, low - 0.02), top)
    cuts = [float(c) for c in (cutoffs or []) if c is not None and np.isfinite(c)]
    right = max([DCA_MAX_THRESHOLD] + [c + 0.1 for c in cuts])
    return (first, min(right, last)), (DCA_MIN_NET_BENEFIT, top)


def plot_decision_curve(result, *, ylim=None, cutoffs=None, full_range: bool = False,
                        title: str = "Decision curve", ax=None):
    """Net benefit against threshold probability for every model, treat-all and treat-none.

    Parameters
    ----------
    result : DecisionCurveResult
    ylim : (float, float), optional
        Net-benefit range; default from :func:`decision_curve_limits`.
    cutoffs : sequence of float, optional
        The models' chosen cut-offs: the default threshold range reaches 0.1 beyond the highest,
        and each is marked on the x axis.
    full_range : bool
        Show every computed threshold (0 to 1) and every model curve's lowest value instead of the
        clinically relevant range (see :func:`decision_curve_limits`).
    """
    fig, ax = _new_axes((6, 4.5), ax)
    wide = result.wide()
    (x0, x1), (y0, y1) = decision_curve_limits(result, cutoffs=cutoffs, full_range=full_range)
    shown = wide.loc[(wide.index >= x0) & (wide.index <= x1)]
    for name in result.models:
        style = {"Treat all": dict(color="0.4", lw=1, ls="-"),
                 "Treat none": dict(color="0.0", lw=1, ls="-")}.get(name, dict(lw=1.6))
        ax.plot(shown.index, shown[name], label=name, **style)
    for c in cutoffs or []:
        if c is not None and x0 <= c <= x1:
            ax.axvline(c, ls=":", lw=0.8, color="0.5")
    ax.set_ylim(ylim if ylim is not None else (y0, y1))
    ax.set(xlim=(x0, x1), xlabel="Threshold probability", ylabel="Net benefit", title=title)
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
