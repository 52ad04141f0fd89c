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


class _Report:
    def __init__(self):
        self.tables = {}

    def add_section(self, *args, **kwargs):
        pass

    def add_table(self, section, table, caption, **kwargs):
        self.tables[caption] = table


def _run(nomogram):
    import pandas as pd
    from types import SimpleNamespace

    parts = pd.Series(["train"] * 4 + ["external"] * 2, index=[f"c{i}" for i in range(6)])
    y = pd.Series([0, 1, 0, 1, 0, 1], index=parts.index)
    return SimpleNamespace(parts=parts, y=y, failures=pd.DataFrame({"case_id": []}), training_cv_folds=5,
                           centers=None, bootstrap=None, explanations=SimpleNamespace(nomogram=nomogram),
                           study=SimpleNamespace(source=None), design=None)


def _tripod(report):
    return next(t for caption, t in report.tables.items() if caption.startswith("TRIPOD"))


def test_tripod_item_22_names_the_nomogram_only_when_one_was_drawn():
    from sonorad.report.sections.appendix import add_checklist

    drawn, none = _Report(), _Report()
    add_checklist(drawn, _run(object()))
    add_checklist(none, _run(None))
    where = {name: t.set_index("item").loc["22", "addressed_in"] for name, t in
             (("drawn", _tripod(drawn)), ("none", _tripod(none)))}
    assert "Nomogram" in where["drawn"]
    assert "Nomogram" not in where["none"]


def test_the_clear_checklist_is_rendered_next_to_tripod():
    from sonorad.report.sections.appendix import add_checklist

    report = _Report()
    add_checklist(report, _run(object()))
    clear = next(t for caption, t in report.tables.items() if caption.startswith("CLEAR"))
    assert len(clear) == 58
    assert clear.set_index("item").loc[43, "filled_by"] == "run"


def test_files_section_shows_the_command_and_every_earlier_attempt(tmp_path):
    from types import SimpleNamespace

    from sonorad.report.sections.appendix import add_files

    class _Files(_Report):
        def __init__(self):
            super().__init__()
            self.code = {}

        def add_code(self, section, text, caption=""):
            self.code[caption] = text

    config = SimpleNamespace(command="sonorad run study.yaml --out out --jobs 2",
                             attempts=({"started": "2026-12-06 10:00:00", "command": "sonorad run study.yaml --out out",
                                        "timings": {"validate": 1.5, "extract": 30.0}},))
    run = SimpleNamespace(out=tmp_path, timings={"validate": 1.0, "fit": 12.0}, config=config,
                          study=SimpleNamespace(source=None))
    report = _Files()
    add_files(report, run)
    assert report.code["Command"] == "sonorad run study.yaml --out out --jobs 2"
    earlier = [c for c in report.tables if "earlier attempt 1" in c]
    assert earlier and "2026-12-06 10:00:00" in earlier[0]
    assert report.tables[earlier[0]]["seconds"].to_dict() == {"validate": 1.5, "extract": 30.0}
