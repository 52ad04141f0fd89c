"""Every attempt of a run into one folder: its command line and its stage times (``OUT/attempts.json``).

A run resumed after a crash, an interrupt or a kill reuses what its earlier attempts finished; their
stage times would be lost with them. Each attempt appends its record (``started``, ``command``,
``timings``, ``reused``, ``finished``) and rewrites it after every stage, so even an attempt killed
mid-stage keeps the times of the stages it finished.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from sonorad.provenance import write_json_atomic

__all__ = ["ATTEMPTS_FILE", "Attempt", "command_line", "read_attempts"]

ATTEMPTS_FILE = "attempts.json"


def command_line(study, out, *, cohort=None, jobs: int | None = None, report: bool = True, scheduler=None,
                 shared_fs: bool = False) -> tuple[str, str]:
    """The ``sonorad run`` command that reproduces a run, and its options alone (``"none"`` without any)."""
    options = []
    if cohort is not None:
        options += ["--cohort", str(cohort)]
    if jobs is not None:
        options += ["--jobs", str(jobs)]
    if not report:
        options.append("--no-report")
    if scheduler:
        options += ["--scheduler", str(scheduler)]
    if shared_fs:
        options.append("--shared-fs")
    command = shlex.join(["sonorad", "run", str(study), "--out", str(out), *options])
    return command, shlex.join(options) or "none"


def read_attempts(out: Path) -> list[dict]:
    """The attempts recorded in ``out`` (oldest first); none when the file is missing or unreadable."""
    try:
        attempts = json.loads((Path(out) / ATTEMPTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []


class Attempt:
    """This attempt's record, written with the earlier ones to ``OUT/attempts.json``."""

    def __init__(self, out: Path, command: str):
        self.path = Path(out) / ATTEMPTS_FILE
        self.earlier = read_attempts(out)
        self.record = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command, "timings": {},
                       "reused": [], "finished": False}

    def update(self, timings: dict, reused, *, finished: bool = False) -> None:
        self.record.update(timings=dict(timings), reused=list(reused), finished=finished)
        write_json_atomic(self.path, [*self.earlier, self.record], indent=1)
