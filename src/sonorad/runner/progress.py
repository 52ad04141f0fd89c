"""Feedback during long work: a heartbeat for silent stages, and progress bars only on a terminal.

No stage of ``sonorad run`` stays silent for more than :data:`HEARTBEAT_S` seconds, on the console
or in ``run.log``: :func:`heartbeat` says ``"<stage>: still running, 1 min 30 s"`` whenever nothing
else was said for that long. Progress bars (tqdm) redraw a line many times a second, which a log
file or a scheduler's output keeps as hundreds of lines; :func:`progress_bars` allows them only on
a terminal, and the heartbeat and each stage's summary lines stand in for them elsewhere.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["HEARTBEAT_S", "duration", "heartbeat", "progress_bars"]

#: Longest silence of a running stage, in seconds.
HEARTBEAT_S = 30.0


def duration(seconds: float) -> str:
    """``42 s``, ``2 min 05 s``, ``1 h 03 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@contextmanager
def heartbeat(say: Callable[[str], None], label: str, *, interval: float = HEARTBEAT_S,
              last_output: Callable[[], float] | None = None) -> Iterator[None]:
    """Say ``"<label>: still running, <elapsed>"`` after every ``interval`` seconds of silence.

    Parameters
    ----------
    say : callable
        Writes one line (to the console and the log); called from a daemon thread.
    label : str
        The stage.
    interval : float
        Seconds of silence before a line; at most one line per ``interval``.
    last_output : callable, optional
        ``time.monotonic()`` of the last line anything wrote; a stage that reports its own progress
        then gets no extra line. Default: only the heartbeat's own lines count.

    Examples
    --------
    >>> import time
    >>> lines = []
    >>> with heartbeat(lines.append, "fit", interval=0.02):
    ...     time.sleep(0.05)
    >>> lines[0].startswith("fit: still running")
    True
    """
    start = time.monotonic()
    own = [start]
    stop = threading.Event()

    def quiet_since() -> float:
        return max(own[0], start, last_output() if last_output is not None else start)

    def beat() -> None:
        while not stop.wait(max(0.01, quiet_since() + interval - time.monotonic())):
            if time.monotonic() - quiet_since() >= interval:
                own[0] = time.monotonic()
                say(f"{label}: still running, {duration(own[0] - start)}")

    thread = threading.Thread(target=beat, name=f"sonorad-heartbeat-{label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def progress_bars(progress: bool, stream=None) -> bool:
    """Whether to draw progress bars: asked for, and ``stream`` (default stderr, where tqdm draws) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(progress) and bool(getattr(stream, "isatty", lambda: False)())
