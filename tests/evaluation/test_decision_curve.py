"""Known-answer tests of decision curves against R dcurves.

Reference: ``dca(cancer ~ cancerpredmarker, data = df_binary)`` from the R package dcurves,
as stored by the Python port in github.com/MSKCC-Epi-Bio/dcurves,
``dcurves/data/r_bin_dca_result_1.csv`` (column ``net_benefit``).
"""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.evaluation.decision_curve import decision_curve, net_benefit

R_NET_BENEFIT = {
    0.01: 0.13243097643097645, 0.05: 0.1055438596491228, 0.10: 0.08740740740740742,
    0.15: 0.07921568627450981, 0.20: 0.06733333333333334, 0.25: 0.06400000000000002,
    0.30: 0.05466666666666668, 0.35: 0.050153846153846146, 0.40: 0.038666666666666676,
    0.45: 0.02824242424242425,
}
R_TREAT_ALL = {0.01: 0.13131313131313133, 0.10: 0.04444444444444445, 0.20: -0.07499999999999998,
               0.45: -0.5636363636363636}


def test_net_benefit_matches_r_dcurves(df_binary):
    thr = sorted(R_NET_BENEFIT)
    r = decision_curve(df_binary.cancer, {"cancerpredmarker": df_binary.cancerpredmarker}, thr)
    wide = r.wide()
    for t, nb in R_NET_BENEFIT.items():
        assert wide.loc[t, "cancerpredmarker"] == pytest.approx(nb, rel=1e-12)
    for t, nb in R_TREAT_ALL.items():
        assert wide.loc[t, "Treat all"] == pytest.approx(nb, rel=1e-12)
    assert (wide["Treat none"] == 0).all()
    assert r.prevalence == pytest.approx(0.14)


def test_net_benefit_by_hand():
    y = [1, 1, 0, 0, 0]
    p = [0.9, 0.3, 0.5, 0.1, 0.3]
    # pt = 0.3: treated 0.9, 0.3, 0.5, 0.3 -> TP 2, FP 2 (a risk equal to pt is treated)
    assert net_benefit(y, p, [0.3])[0] == pytest.approx(2 / 5 - 2 / 5 * 0.3 / 0.7)
    r = decision_curve(y, np.asarray(p))
    assert r.models == ["model", "Treat all", "Treat none"]
    assert len(r.wide()) == 99


@pytest.mark.parametrize("kwargs,match", [
    (dict(thresholds=[0.2, 1.0]), "thresholds"),
    (dict(thresholds=[]), "thresholds"),
])
def test_bad_thresholds(kwargs, match):
    with pytest.raises(ValueError, match=match):
        decision_curve([0, 1], [0.2, 0.7], **kwargs)


def test_bad_probabilities_name_the_model():
    with pytest.raises(ValueError, match="probas\\['svm'\\]"):
        decision_curve([0, 1, 1], {"svm": [0.2, 1.7, 0.4]})
    with pytest.raises(ValueError, match="one class only"):
        decision_curve([1, 1], {"m": [0.2, 0.3]})
