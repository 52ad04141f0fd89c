"""Tests of sonorad.report.sections.appendix: the list of the run's output files."""

from sonorad.report.sections.appendix import output_files


def test_output_file_list_leaves_out_input_images_and_summarises_figures(tmp_path):
    for rel in ("cohort/images/c1.png", "cohort/cases.csv", "tables/metrics.csv", "figures/roc_external.png",
                "figures/roc_external.svg", "figures/gradcam/c1.png", "features/.cache/ab/x.json",
                "models/bootstrap_0123/resample_00000.json", "report.html", "tables/x.part"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    listing = output_files(tmp_path)
    assert listing == sorted(["figures/ (2 files)", "figures/gradcam/ (1 files)", "models/bootstrap_0123/ (1 files)",
                              "report.html", "tables/metrics.csv"])
