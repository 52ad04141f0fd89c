"""Figures and the HTML report of a finished study run (:class:`sonorad.pipeline.result.StudyResult`).

The report only draws: every number, table and explanation comes from the result, so
``sonorad report OUT`` re-renders a finished run without refitting anything. Every figure is
saved under ``figures/`` as PNG and SVG at 300 dpi and embedded in ``report.html``. The sections
are drawn by :mod:`sonorad.report.sections`, in the order of :data:`SECTION_TITLES`.
"""

from __future__ import annotations

from pathlib import Path

from sonorad.report.sections.appendix import add_checklist, add_files
from sonorad.report.sections.common import SECTION_TITLES, FigureSaver
from sonorad.report.sections.explanations import add_gradcam, add_nomogram, add_shap
from sonorad.report.sections.overview import (add_clinical, add_cohort, add_features, add_methods, add_models,
                                              add_summary)
from sonorad.report.sections.performance import (add_bootstrap, add_calibration, add_centers, add_dca,
                                                 add_delong, add_roc)

__all__ = ["write_study_report", "SECTION_TITLES"]


def write_study_report(run, log=None) -> Path:
    """Draw every figure into ``run.out / "figures"`` and write ``run.out / "report.html"``.

    An optional section that cannot be produced (SHAP, nomogram, Grad-CAM) is reported in the
    section with the reason instead of stopping the report.
    """
    from sonorad import __version__
    from sonorad.report import Report

    say = log.say if log is not None else (lambda m: None)
    report = Report(f"{run.study.name}", subtitle=run.study.description,
                    footer=f"sonorad {__version__}, seed {run.study.seed}")
    figs = FigureSaver(report, run.out / "figures")
    add_summary(report, run)
    add_methods(report, run)
    add_cohort(report, figs, run)
    add_features(report, figs, run)
    add_clinical(report, run)
    add_models(report, run)
    add_roc(report, figs, run)
    add_delong(report, run)
    add_calibration(report, figs, run)
    add_centers(report, figs, run)
    add_bootstrap(report, figs, run)
    add_dca(report, figs, run)
    for section, draw, wanted in (("nomogram", add_nomogram, run.config.nomogram), ("shap", add_shap, run.config.shap),
                                  ("gradcam", add_gradcam, run.config.gradcam > 0)):
        if wanted:
            say(f"report: {section}")
            draw(report, figs, run)
    for note in run.notes:
        report.add_text("summary", f"Note: {note}")
    add_checklist(report, run)
    add_files(report, run)
    return report.write(run.out / "report.html")
