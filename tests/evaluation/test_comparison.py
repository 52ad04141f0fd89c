"""sonorad.evaluation.comparison: the chosen model against the clinical reference, in numbers and in words."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.evaluation import delong_test, idi, nri
from sonorad.evaluation.comparison import compare_with_reference


def _risks(seed=0, n=200):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    reference = 1 / (1 + np.exp(-(0.8 * (2 * y - 1) + rng.normal(size=n))))
    return rng, y, reference


def test_a_model_no_better_than_the_reference_is_said_to_be_not_better_in_plain_words():
    rng, y, reference = _risks()
    model = np.clip(reference + rng.normal(scale=0.01, size=len(y)), 0.001, 0.999)
    result = compare_with_reference(y, model, reference, model="mlp", reference="clinical_reference",
                                    cohort="external")
    d = delong_test(y, model, reference)
    assert not result.better
    assert result.summary == (f"The chosen model (mlp) is not better than the clinical reference (clinical_reference) "
                              f"on the external cohort (AUC {d.auc_a:.3f} vs {d.auc_b:.3f}, DeLong p = "
                              f"{d.p_value:.3f}).")
    # the statistics are the package's own, model over reference
    assert result.delong.p_value == d.p_value
    assert result.nri.estimate == nri(y, reference, model).estimate
    assert result.idi.estimate == idi(y, reference, model).estimate
    frame = result.to_frame()
    assert list(frame["statistic"]) == ["AUC difference (DeLong)", "NRI (continuous)", "IDI"]
    assert set(frame["cohort"]) == {"external"}


def test_a_clearly_better_model_is_said_to_discriminate_better():
    rng, y, reference = _risks(1)
    model = np.where(y == 1, 0.8, 0.2) + rng.normal(scale=0.05, size=len(y))
    result = compare_with_reference(y, np.clip(model, 0, 1), reference, model="combined/svm",
                                    reference="clinical_reference")
    assert result.better and "discriminates better than" in result.summary and "p < 0.001" in result.summary


def test_a_reclassification_statistic_that_cannot_be_computed_is_noted_not_raised(monkeypatch):
    from sonorad.evaluation import reclassification

    def broken(*args, **kwargs):
        raise ValueError("no events")

    monkeypatch.setattr(reclassification, "idi", broken)
    _, y, reference = _risks(2)
    result = compare_with_reference(y, reference[::-1].copy(), reference, model="m", reference="r")
    assert result.idi is None and any("IDI not computed" in n for n in result.notes)
    with pytest.raises(ValueError):
        compare_with_reference(y, reference, reference[:10], model="m", reference="r")
