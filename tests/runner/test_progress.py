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


def test_heartbeat_says_a_long_silent_stage_is_still_running():
    import time

    from sonorad.runner.progress import heartbeat

    lines = []
    with heartbeat(lines.append, "fit", interval=0.05):
        time.sleep(0.33)
    count = len(lines)
    assert 3 <= count <= 7, lines
    assert all(line.startswith("fit: still running,") for line in lines)
    time.sleep(0.15)
    assert len(lines) == count  # stopped with the block


def test_heartbeat_is_quiet_while_the_stage_speaks_for_itself():
    import time

    from sonorad.runner.progress import heartbeat

    lines, last = [], [time.monotonic()]
    with heartbeat(lines.append, "features", interval=0.1, last_output=lambda: last[0]):
        for _ in range(6):
            time.sleep(0.05)
            last[0] = time.monotonic()  # a progress line every 0.05 s
    assert lines == []


def test_every_stage_of_the_run_log_has_a_heartbeat(tmp_path, capsys):
    import time

    log = RunLog(tmp_path / "run.log", echo=False, heartbeat=0.05)
    assert log.stage("model bundle", time.sleep, 0.3) is None
    log.close()
    text = (tmp_path / "run.log").read_text()
    assert 2 <= text.count("model bundle: still running") <= 7


def test_not_a_terminal_gets_no_progress_bars():
    from sonorad.runner.progress import progress_bars

    assert progress_bars(True, stream=io.StringIO()) is False
    assert progress_bars(True, stream=_Tty()) is True
    assert progress_bars(False, stream=_Tty()) is False
