"""Where the calculator's predictions run: worker processes in parallel, or this process one at a time.

A prediction is a function ``fn(bundle, **kwargs)`` (module level, so that it can be sent to another
process) run by a pool:

* :class:`ProcessPool` (``sonorad serve``): ``workers`` processes, started with ``spawn`` (no state of
  the server is copied into them), each loading the bundle once from its folder and checking that its
  sha256 is the server's. They run in parallel up to the number of cores: the feature extraction,
  models, SHAP and Grad-CAM of a case are mostly Python and numpy, which threads of one process cannot
  run at once, and Grad-CAM puts hooks on the network, which two cases must not share. A worker keeps
  torch's and BLAS's default thread counts, as ``sonorad predict`` does: a network's sums depend on
  how its work is split over threads (one thread instead of two moved a demo probability by 9e-7),
  and the calculator must give ``sonorad predict``'s probability. A prediction past its time limit is stopped by killing its process; a new one is
  started in its place, and so is a process that died.
* :class:`InlinePool` (``workers=0``; tests, and bundles too large to load several times): in this
  process, one prediction at a time. A prediction past its time limit is answered 504, but its thread
  runs to the end (a thread cannot be stopped), and holds the next one back until then.

Both admit at most ``workers + max_queue`` predictions (one running per worker, the rest waiting);
one more is refused at once with :class:`PoolBusy` (HTTP 503 with ``Retry-After``). A prediction
waiting for a worker is dropped when its client has gone (``gone()`` answers true), and a running one
is stopped then too (process pool). The time limit counts from admission, the wait included.

The same input gives the same probability whichever worker scores it: every worker loads the same
bundle files with the same thread settings.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
import traceback
import weakref
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

__all__ = ["ClientGone", "InlinePool", "PoolBusy", "PoolTimeout", "ProcessPool", "WorkerFailed", "default_workers",
           "probe"]

log = logging.getLogger("sonorad.serve")

#: How often (seconds) a waiting or running prediction checks its deadline and its client.
POLL_SECONDS = 0.2
#: Environment of a worker, set before torch / numpy load their OpenMP runtime (unless already set).
_PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


class PoolBusy(Exception):
    """Every worker is busy and the queue is full; ``retry_after`` (seconds) is a fair wait."""

    def __init__(self, retry_after: int):
        self.retry_after = int(retry_after)
        super().__init__(f"all workers are busy and {self.retry_after} s is a fair wait")


class PoolTimeout(Exception):
    """The prediction was not done within its time limit (and was stopped, in a process pool)."""

    def __init__(self, seconds: float, started: bool):
        self.seconds = float(seconds)
        self.started = started
        super().__init__(f"the prediction took longer than {self.seconds:g} s")


class ClientGone(Exception):
    """The client went away; its prediction was dropped (or stopped)."""


class WorkerFailed(Exception):
    """A worker process died, or a prediction failed there unexpectedly (``detail``: server log only)."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(detail)


def default_workers() -> int:
    """Worker processes for this machine: one per usable core (at least one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores)


class _Admission:
    """At most ``limit`` predictions admitted at once; the mean of recent run times for Retry-After."""

    def __init__(self, limit: int, workers: int):
        self.limit, self.workers = int(limit), max(1, int(workers))
        self.count = 0
        self.mean_seconds = 1.0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.count >= self.limit:
                raise PoolBusy(max(1, math.ceil(self.mean_seconds * self.count / self.workers)))
            self.count += 1

    def leave(self, seconds: float | None = None) -> None:
        with self._lock:
            self.count -= 1
            if seconds is not None:
                self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * seconds


def probe(bundle, seconds: float = 0.0, note: str | None = None) -> dict:
    """A job that scores nothing: where it ran (process id, bundle sha256), after ``seconds`` of sleep.

    For checking a pool (``sonorad serve`` health checks, tests); ``note`` is a file path written when
    the job starts, to tell afterwards whether it ran.
    """
    if note is not None:
        Path(note).write_text(f"started in process {os.getpid()}\n", encoding="utf-8")
    time.sleep(float(seconds))
    return {"pid": os.getpid(), "sha256": str(bundle.sha256)}


def _check_limits(workers: int, max_queue: int) -> None:
    if workers < 0 or max_queue < 0:
        raise ValueError(f"workers and max_queue must be 0 or more, got {workers} and {max_queue}")


# ------------------------------------------------------------------------------- in this process


class InlinePool:
    """Predictions in this process, one at a time (see the module docstring).

    Parameters
    ----------
    bundle : Bundle
    max_queue : int
        Predictions that may wait behind the running one.
    """

    workers = 0

    def __init__(self, bundle, *, max_queue: int = 16):
        _check_limits(0, max_queue)
        self.bundle = bundle
        self._admission = _Admission(1 + max_queue, 1)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sonorad-predict")

    def wait_ready(self, timeout: float = 0.0) -> bool:
        return True

    def run(self, fn, kwargs: dict, *, timeout: float, gone=None):
        """``fn(bundle, **kwargs)``; raises :class:`PoolBusy`, :class:`PoolTimeout`, :class:`ClientGone`
        or what ``fn`` raised."""
        self._admission.enter()
        deadline = time.monotonic() + timeout
        started = threading.Event()
        dropped = threading.Event()

        def job():
            if dropped.is_set():
                return None
            started.set()
            return fn(self.bundle, **kwargs)

        t0 = time.monotonic()
        future = self._executor.submit(job)
        try:
            while True:
                try:
                    result = future.result(timeout=max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
                except FutureTimeout:
                    if time.monotonic() >= deadline:
                        dropped.set()
                        raise PoolTimeout(timeout, started.is_set()) from None
                    if not started.is_set() and gone is not None and gone():
                        dropped.set()
                        raise ClientGone() from None
                    continue
                self._admission.leave(time.monotonic() - t0)
                return result
        except BaseException:
            if future.done() or not started.is_set():
                self._admission.leave()
            else:  # the thread goes on: it stays admitted until it ends
                future.add_done_callback(lambda _: self._admission.leave())
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------------- processes


def _worker_main(conn, bundle_path: str, sha256: str) -> None:
    """A worker process: load the bundle, say ready, then run ``(fn, kwargs)`` messages until ``None``
    or until the server's end of the pipe closes."""
    # Idle OpenMP threads sleep instead of spinning: several workers share the cores, and a worker's
    # spinning threads would take them from the others. (How the work is split, and so every sum,
    # stays as in ``sonorad predict``.)
    for name, value in _PASSIVE.items():
        os.environ.setdefault(name, value)
    try:
        from sonorad.bundle import load_bundle

        bundle = load_bundle(Path(bundle_path))
        if bundle.sha256 != sha256:
            raise RuntimeError(f"the bundle at {bundle_path} changed since the server loaded it "
                               f"(sha256 {bundle.sha256[:12]}, not {sha256[:12]}); restart the server")
    except Exception as exc:  # noqa: BLE001 - reported to the server, which logs it
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    _warm(bundle)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, kwargs = message
        try:
            reply = ("ok", fn(bundle, **kwargs))
        except Exception as exc:  # noqa: BLE001 - sent back: a SonoradError as it is, others as text
            reply = ("error", _sendable(exc))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def _warm(bundle) -> None:
    """Import what a prediction needs and build the PyRadiomics extractor before the worker says it is
    ready, so that its first request does not wait for them (a failure here is left to that request)."""
    try:
        if (bundle.features or {}).get("radiomics") is not None:
            from sonorad.features.radiomics import prepare

            prepare(bundle.radiomics_params)
        import shap  # noqa: F401 - the chosen model is explained with it

        if (bundle.features or {}).get("deep") or "cnn" in {bundle.model_kind(m) for m in bundle.models}:
            import torch  # noqa: F401
    except Exception:  # noqa: BLE001
        pass


def _sendable(exc: Exception):
    """``exc`` itself when it is a sonorad error that survives pickling; else a :class:`WorkerFailed`
    carrying its traceback (for the server log)."""
    import pickle

    from sonorad.errors import SonoradError

    if isinstance(exc, SonoradError):
        try:
            return pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001
            pass
    return WorkerFailed("".join(traceback.format_exception(exc)))


class _Worker:
    def __init__(self, ctx, bundle_path: str, sha256: str):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, bundle_path, sha256), daemon=True,
                                   name="sonorad-worker")
        self.process.start()
        child.close()

    def wait_ready(self, timeout: float) -> None:
        try:
            if not self.conn.poll(timeout):
                raise WorkerFailed(f"the worker did not load the bundle within {timeout:g} s")
            kind, detail = self.conn.recv()
        except (EOFError, OSError):
            raise WorkerFailed(f"the worker ended while loading the bundle (exit code {self.process.exitcode})") from None
        if kind != "ready":
            raise WorkerFailed(f"the worker could not load the bundle: {detail}")

    def stop(self, grace: float = 2.0) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(grace)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _stop_all(workers: set) -> None:
    for worker in list(workers):
        worker.kill()


class ProcessPool:
    """Predictions in ``workers`` worker processes (see the module docstring).

    Parameters
    ----------
    bundle : Bundle
        The server's loaded bundle: each worker loads the same folder and checks its sha256.
    workers : int
        Worker processes (default :func:`default_workers`).
    max_queue : int
        Predictions that may wait for a worker.
    start_timeout : float
        Seconds a worker may take to load the bundle.
    """

    def __init__(self, bundle, *, workers: int | None = None, max_queue: int = 16, start_timeout: float = 300.0):
        import multiprocessing

        workers = default_workers() if workers is None else int(workers)
        _check_limits(workers, max_queue)
        if workers < 1:
            raise ValueError("a process pool needs at least one worker; use InlinePool for none")
        self.workers = workers
        self._ctx = multiprocessing.get_context("spawn")
        self._path, self._sha256 = str(bundle.path), str(bundle.sha256)
        self._start_timeout = float(start_timeout)
        self._admission = _Admission(workers + max_queue, workers)
        self._idle: queue.Queue = queue.Queue()
        self._live: set = set()
        self._lock = threading.Lock()
        self._closed = False
        self._failures = 0
        self._gave_up = False  # workers failed to start too often: none is started any more
        self._finalizer = weakref.finalize(self, _stop_all, self._live)
        for _ in range(workers):
            self._start_one()

    # -- workers
    def _start_one(self) -> None:
        """Start a worker; it joins the idle queue once it has loaded the bundle (in the background)."""
        with self._lock:
            if self._closed:
                return
            worker = _Worker(self._ctx, self._path, self._sha256)
            self._live.add(worker)
        threading.Thread(target=self._await_ready, args=(worker,), daemon=True, name="sonorad-worker-start").start()

    def _await_ready(self, worker: _Worker) -> None:
        try:
            worker.wait_ready(self._start_timeout)
        except WorkerFailed as exc:
            self._retire(worker)
            if self._closed:  # stopped while loading
                return
            log.error("sonorad serve: %s", exc)
            with self._lock:
                self._failures += 1
                self._gave_up = self._failures > 3 * self.workers
            if not self._gave_up:
                self._start_one()
            return
        with self._lock:
            if self._closed:
                worker.stop()
                return
        self._idle.put(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)

    def _replace(self, worker: _Worker) -> None:
        self._retire(worker)
        self._start_one()

    def wait_ready(self, timeout: float = 300.0) -> bool:
        """Whether every worker has loaded the bundle within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self._idle.qsize() < self.workers:
            if time.monotonic() > deadline or self._closed:
                return False
            time.sleep(0.05)
        return True

    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and memory reports)."""
        with self._lock:
            return [w.process.pid for w in self._live if w.process.pid is not None]

    # -- predictions
    def run(self, fn, kwargs: dict, *, timeout: float, gone=None):
        """``fn(bundle, **kwargs)`` in a worker; raises :class:`PoolBusy`, :class:`PoolTimeout`,
        :class:`ClientGone`, :class:`WorkerFailed` or the sonorad error ``fn`` raised."""
        if self._closed:
            raise WorkerFailed("the worker pool is closed")
        self._admission.enter()
        t0 = time.monotonic()
        deadline = t0 + timeout
        seconds = None
        try:
            worker = self._take(deadline, timeout, gone)
            try:
                kind, value = self._call(worker, fn, kwargs, deadline, timeout, gone)
            except BaseException:
                self._replace(worker)  # stopped mid-work or broken: never reused
                raise
            self._idle.put(worker)
            seconds = time.monotonic() - t0
        finally:
            self._admission.leave(seconds)
        if kind == "error":
            raise value
        return value

    def _take(self, deadline: float, timeout: float, gone) -> _Worker:
        """The next idle worker, waiting until ``deadline``; a client gone while waiting drops the job."""
        while True:
            if self._closed:
                raise WorkerFailed("the worker pool is closed")
            if self._gave_up and not self._live:
                raise WorkerFailed("no worker process could load the bundle (the reasons are logged above)")
            left = deadline - time.monotonic()
            if left <= 0:
                raise PoolTimeout(timeout, started=False)
            try:
                worker = self._idle.get(timeout=min(POLL_SECONDS, left))
            except queue.Empty:
                if gone is not None and gone():
                    raise ClientGone() from None
                continue
            if not worker.process.is_alive():
                self._replace(worker)
                continue
            if gone is not None and gone():
                self._idle.put(worker)
                raise ClientGone()
            return worker

    def _call(self, worker: _Worker, fn, kwargs, deadline: float, timeout: float, gone):
        try:
            worker.conn.send((fn, kwargs))
            while not worker.conn.poll(max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    raise PoolTimeout(timeout, started=True)
                if gone is not None and gone():
                    raise ClientGone()
                if not worker.process.is_alive():
                    raise WorkerFailed(f"the worker process ended (exit code {worker.process.exitcode})")
            return worker.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            raise WorkerFailed(f"the worker process ended ({type(exc).__name__}; exit code "
                               f"{worker.process.exitcode})") from None

    def close(self) -> None:
        """Stop every worker (those at work are killed) and wait for them."""
        with self._lock:
            self._closed = True
            live = list(self._live)
            self._live.clear()
        for worker in live:
            worker.stop(grace=1.0)
