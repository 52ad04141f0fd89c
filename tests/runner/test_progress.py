"""Progress lines of the runner's countable stages (folds, bootstrap resamples)."""

import io

from sonorad.runner.run import RunLog


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_not_a_terminal_gives_a_few_plain_lines_with_an_eta(tmp_path, capsys):
    log = RunLog(tmp_path / "run.log", echo=True)
    progress = log.progress("bootstrap", lines=4, stream=io.StringIO())
    for done in range(1, 101):
        progress(done, 100)
    log.close()
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "bootstrap:" in line]
    assert 4 <= len(lines) <= 5 and "\r" not in out
    assert "left" in lines[0] and "100/100 (100%)" in lines[-1] and "left" not in lines[-1]
    assert (tmp_path / "run.log").read_text().count("bootstrap:") == len(lines)


def test_terminal_rewrites_one_line_and_logs_plain_lines(tmp_path, capsys):
    log = RunLog(tmp_path / "run.log", echo=True)
    tty = _Tty()
    progress = log.progress("cv", lines=2, stream=tty)
    for done in range(1, 11):
        progress(done, 10)
    log.close()
    assert tty.getvalue().count("\r") == 10 and tty.getvalue().endswith("\n")
    assert capsys.readouterr().out == ""
    assert (tmp_path / "run.log").read_text().count("cv:") == 2


def test_resumed_steps_do_not_count_towards_the_rate(tmp_path, capsys):
    log = RunLog(tmp_path / "run.log", echo=True)
    progress = log.progress("bootstrap", resumed=8, stream=io.StringIO())
    progress(8, 10)
    progress(9, 10)
    progress(10, 10)
    log.close()
    out = capsys.readouterr().out
    assert "8/10 reused from the checkpoint" in out and "10/10 (100%)" in out
