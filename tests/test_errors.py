import pickle

from sonorad.errors import CaseError, CohortError, Problem


def test_case_error_names_case_and_fix_and_survives_pickling():
    err = CaseError("case_7", "mask is 10x10 but image is 20x20", "redraw the mask on this image")
    assert "case_7" in str(err) and "redraw" in str(err)
    back = pickle.loads(pickle.dumps(err))
    assert back.case_id == "case_7" and str(back) == str(err)


def test_cohort_error_lists_every_problem_and_survives_pickling():
    problems = [Problem("duplicate case id", "rename one", "a"), Problem("missing label", "fill it", "b")]
    err = CohortError(problems, source="cases.csv")
    text = str(err)
    assert "2 problem(s)" in text and "case a" in text and "case b" in text
    assert str(pickle.loads(pickle.dumps(err))) == text
