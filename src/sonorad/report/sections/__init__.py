"""The sections of the study report, one module per group: :mod:`.overview` (summary, methods,
participants, features, clinical variables, models), :mod:`.performance` (ROC, DeLong, calibration,
centers, bootstrap, decision curves), :mod:`.explanations` (nomogram, SHAP, Grad-CAM) and
:mod:`.appendix` (TRIPOD+AI and CLEAR checklists, files). Each ``add_<section>(report, [figures,] run)`` draws one
section of :func:`sonorad.report.study_report.write_study_report` from a finished run.
"""
