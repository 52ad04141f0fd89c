"""Radiomics nomogram: Rad-score + clinical and ultrasound variables -> multivariable logistic regression.

The most common design of published ultrasound radiomics papers. The Rad-score is the LASSO
signature of the PyRadiomics features (z-score -> univariate -> redundancy -> LASSO); its
out-of-fold training values enter a LASSO over the declared variables and the score, and one
logistic regression on what it keeps is the model, drawn as a nomogram. Deep features are not used
even when the study extracts them.
"""

from __future__ import annotations

from dataclasses import replace

from sonorad.designs.base import FeatureColumns
from sonorad.designs.score_fusion import ScoreFusionDesign

__all__ = ["RadiomicsNomogramDesign"]


class RadiomicsNomogramDesign(ScoreFusionDesign):
    """Rad-score + clinical/ultrasound variables -> LASSO -> logistic regression -> nomogram."""

    name = "radiomics_nomogram"
    aliases = ()
    title = "Radiomics nomogram (Rad-score + clinical and ultrasound variables, logistic regression)"
    selection_keys = ("rad_score",)
    fixed = {"models": ["logistic_regression"], "dl_score": None}

    def fit(self, X, y, groups=None, *, columns: FeatureColumns):
        return super().fit(X, y, groups, columns=replace(columns, deep=(), backbones=()))
