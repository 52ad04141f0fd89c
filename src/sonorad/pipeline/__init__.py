"""The stages of a study as functions with explicit inputs and outputs, and the frozen result.

- :mod:`sonorad.pipeline.stages`: validate, extract, fit, cross-validate, predict, evaluate;
- :mod:`sonorad.pipeline.explanations`: SHAP, nomogram, Grad-CAM, Table 1;
- :mod:`sonorad.pipeline.statistics`: every statistic from per-case probabilities;
- :mod:`sonorad.pipeline.checkpoint`: one wrapper that saves a stage's output under its inputs' hash;
- :mod:`sonorad.pipeline.result`: :class:`StudyResult`, saved in the run folder and rendered by the report.
"""
