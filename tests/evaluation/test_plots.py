"""Smoke tests of the figures: each takes results and returns a Figure with the expected content."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression

from sonorad.evaluation import calibration, decision_curve, plots, roc_curve
from sonorad.explain import build_nomogram, explain_model


@pytest.fixture(autouse=True)
def _close():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_roc_calibration_dca(asah, df_binary):
    y = asah.poor_outcome
    f = plots.plot_roc([roc_curve(y, asah.wfns, name="WFNS"), roc_curve(y, asah.s100b, name="S100B")])
    assert isinstance(f, Figure)
    labels = [t.get_text() for t in f.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("WFNS: AUC 0.824")
    f = plots.plot_calibration(calibration(df_binary.cancer, df_binary.cancerpredmarker))
    assert isinstance(f, Figure) and len(f.axes[0].lines) >= 2
    dc = decision_curve(df_binary.cancer, {"marker": df_binary.cancerpredmarker})
    f = plots.plot_decision_curve(dc)
    assert [t.get_text() for t in f.axes[0].get_legend().get_texts()] == ["marker", "Treat all", "Treat none"]


def test_nomogram_and_shap_figures():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"rad_score": rng.normal(size=60), "margin": rng.choice(["smooth", "spiculated"], 60)})
    y = (X.rad_score + (X.margin == "spiculated") + rng.normal(size=60) > 0.5).astype(int)
    Xn = pd.get_dummies(X, drop_first=True, dtype=float)
    model = LogisticRegression().fit(Xn, y)
    f = plots.plot_nomogram(build_nomogram(model, Xn), title="Nomogram")
    texts = {t.get_text() for t in f.axes[0].texts}
    assert {"Points", "Total points", "Probability", "rad_score", "margin_spiculated"} <= texts
    r = explain_model(model, Xn)
    for fig in (plots.plot_shap_beeswarm(r), plots.plot_shap_bar(r), plots.plot_shap_waterfall(r, 0)):
        assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="not explained"):
        plots.plot_shap_waterfall(r, "nope")


def test_calibration_curves_before_and_after_with_spikes():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, 200)
    y = (rng.uniform(size=200) < p).astype(int)
    results = [calibration(y, p, name="before"), calibration(y, np.sqrt(p), name="after")]
    f = plots.plot_calibration_curves(results, colors=("0.4", "#c44e52"), risk_distribution=(y, p),
                                      title="Local calibration of lr")
    ax = f.axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels[0] == "Ideal" and labels[1].startswith("before: slope") and "Brier" in labels[2]
    assert len(ax.collections) == 2 and ax.get_title() == "Local calibration of lr"
    with pytest.raises(ValueError, match="one color per result"):
        plots.plot_calibration_curves(results, colors=("red",))


def test_pyplot_keeps_a_backend_the_user_chose():
    import os
    import subprocess
    import sys

    code = "from sonorad.evaluation.plots import pyplot; import matplotlib; pyplot(); print(matplotlib.get_backend())"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**env, "MPLBACKEND": "svg"})
    assert chosen.stdout.strip().lower() == "svg"
    default = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert default.stdout.strip().lower() == "agg"


def _dca(seed=0, n=300):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 3, n)
    y = (rng.uniform(size=n) < p).astype(int)
    return decision_curve(y, {"model": p, "noise": rng.uniform(size=n)})


def test_decision_curve_shows_the_clinical_range_with_treat_all_visible():
    dc = _dca()
    f = plots.plot_decision_curve(dc)
    ax = f.axes[0]
    assert ax.get_xlim()[1] == pytest.approx(plots.DCA_MAX_THRESHOLD, abs=0.011)
    assert ax.get_ylim()[0] == pytest.approx(-0.05)
    # where treat-all is negative but above -0.05 it is drawn, not cut off just below 0
    wide = dc.wide()
    visible = wide[(wide["Treat all"] < 0) & (wide["Treat all"] > -0.05)]
    assert len(visible) > 0
    # a cut-off of 0.7 extends the range to its neighbourhood
    f = plots.plot_decision_curve(dc, cutoffs=[0.7])
    assert f.axes[0].get_xlim()[1] == pytest.approx(0.8, abs=0.011)
    # the full range: every threshold and every model curve inside the axes
    f = plots.plot_decision_curve(dc, full_range=True)
    (x0, x1), (y0, _) = f.axes[0].get_xlim(), f.axes[0].get_ylim()
    assert x1 == pytest.approx(wide.index.max()) and y0 < wide[["model", "noise"]].min().min()


def test_calibration_lowess_only_where_predictions_are_and_legend_off_the_curves():
    rng = np.random.default_rng(1)
    p = np.r_[rng.uniform(0.1, 0.5, 195), [0.97, 0.98, 0.99, 0.995, 0.999]]
    y = (rng.uniform(size=200) < p).astype(int)
    r = calibration(y, p)
    kept = plots.supported_lowess(r.smoothed)
    assert kept["predicted"].max() <= np.quantile(p, 0.975) + 1e-12
    assert kept["predicted"].min() >= np.quantile(p, 0.025) - 1e-12
    f = plots.plot_calibration(r)
    ax = f.axes[0]
    curve = max(ax.get_lines(), key=lambda line: len(line.get_xdata()))
    assert max(curve.get_xdata()) < 0.9
    legend = ax.get_legend()
    assert legend.get_texts()[0].get_fontsize() >= 8
    # the legend sits below the plotting area
    f.canvas.draw()
    assert legend.get_window_extent().y1 <= ax.get_window_extent().y0 + 1
