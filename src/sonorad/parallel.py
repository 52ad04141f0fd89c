"""Where parallel work runs: worker processes on this machine, or a Dask cluster.

With no scheduler, sonorad uses joblib's loky worker processes on this machine (``--jobs N``),
exactly as before. With a scheduler (``--scheduler ADDRESS``, the ``SONORAD_SCHEDULER``
environment variable or the study file's ``features.executor``), :func:`use_cluster` connects a
:class:`distributed.Client` and, for as long as the ``with`` block lasts,

- feature extraction (radiomics, ICC) sends one task per case to the cluster
  (:meth:`Cluster.map_unordered`), at most a bounded window of tasks at a time, and hands each
  result back as it arrives so the driver caches it at once;
- every joblib call (scikit-learn's ``GridSearchCV(n_jobs=...)``, the training cross-validation)
  runs on joblib's Dask backend. Each fit gets the same data and the same ``random_state`` as in
  a local run, so the numbers are the same.

A scheduler is either an address (``tcp://10.0.0.5:8786``, ``10.0.0.5:8786``) or ``slurm`` /
``slurm:N``: a :class:`dask_jobqueue.SLURMCluster` configured by dask-jobqueue's own
configuration (``~/.config/dask/jobqueue.yaml``) and scaled to ``N`` jobs. Both end in the same
``Client`` and the same code path; see ``docs/scaling.md``.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from sonorad.errors import ConfigError, SonoradError

__all__ = ["SCHEDULER_ENV", "Cluster", "ClusterLost", "active_cluster", "exit_with_parent", "fitting_jobs",
           "resolve_scheduler", "use_cluster"]

#: Environment variable naming the Dask scheduler (the same values as ``--scheduler``).
SCHEDULER_ENV = "SONORAD_SCHEDULER"

_LOCAL = ("", "local", "none")
_ACTIVE: contextvars.ContextVar[Cluster | None] = contextvars.ContextVar("sonorad_cluster", default=None)


class ClusterLost(SonoradError):
    """The Dask scheduler went away (or could not be reached); finished work is cached."""


def resolve_scheduler(option=None, study_value=None):
    """Which scheduler to use: the ``--scheduler`` option, else ``SONORAD_SCHEDULER``, else the study file.

    Parameters
    ----------
    option : str or None
        The command-line value.
    study_value : str, mapping or None
        The study file's ``features.executor``: ``local``, an address, ``slurm`` / ``slurm:N``, or a
        mapping ``{slurm: {workers: N, <SLURMCluster arguments>}}`` or ``{scheduler: ADDRESS}``.

    Returns
    -------
    str, dict or None
        ``None`` for local worker processes (``local``, empty or nothing set anywhere).
    """
    for value, where in ((option, "--scheduler"), (os.environ.get(SCHEDULER_ENV), SCHEDULER_ENV),
                         (study_value, "features.executor")):
        if value is None:
            continue
        if isinstance(value, str):
            if value.strip().lower() in _LOCAL:
                return None
            return value.strip()
        if isinstance(value, Mapping):
            _check_spec(value, where)
            return dict(value)
        raise ConfigError(f"{where}: expected 'local', a scheduler address (tcp://host:port), 'slurm' or a "
                          f"mapping {{slurm: {{...}}}}; got {value!r}")
    return None


def _check_spec(spec: Mapping, where: str) -> None:
    if len(spec) != 1 or next(iter(spec)) not in ("slurm", "scheduler"):
        raise ConfigError(f"{where}: a mapping must have exactly one key, 'slurm' (SLURMCluster arguments and "
                          f"'workers') or 'scheduler' (an address); got keys {sorted(spec)}")
    kind, value = next(iter(spec.items()))
    if kind == "slurm" and not isinstance(value, Mapping | None):
        raise ConfigError(f"{where}.slurm: expected a mapping of SLURMCluster arguments, got {value!r}")
    if kind == "scheduler" and not isinstance(value, str):
        raise ConfigError(f"{where}.scheduler: expected an address such as tcp://host:8786, got {value!r}")


def _address(value: str) -> str:
    return value if "://" in value else f"tcp://{value}"


def _start_slurm(options: Mapping | None, workers: int | None):
    """A SLURMCluster (dask-jobqueue), scaled to ``workers`` jobs; arguments not given come from its config."""
    from dask_jobqueue import SLURMCluster

    options = dict(options or {})
    workers = options.pop("workers", workers)
    cluster = SLURMCluster(**options)
    cluster.scale(jobs=int(workers) if workers else 1)
    return cluster


@dataclass
class Cluster:
    """A connected Dask cluster: the client, its address and how workers get their input files.

    Made by :func:`use_cluster`; extraction code reaches it with :func:`active_cluster`.
    """

    client: object
    address: str
    shared_fs: bool = False
    owned: object | None = field(default=None, repr=False)  # a cluster started here (SLURM), closed at exit

    def n_threads(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # scheduler gone: map_unordered reports it
            return 1

    def lost(self, reason: str, *, done: int | None = None) -> ClusterLost:
        cached = "" if done is None else f" {done} task(s) of this run had finished; every case extracted is cached."
        return ClusterLost(
            f"lost the Dask scheduler at {self.address} ({reason}).{cached} Fix: restart the scheduler and its "
            "workers (or run without --scheduler) and rerun the same command: it resumes from the cache"
        )

    def map_unordered(self, function: Callable, arguments: Iterable[tuple], on_result: Callable[[object], None],
                      *, window: int | None = None, on_worker_death: Callable[[tuple], object] | None = None,
                      split: Callable[[tuple], list[tuple]] | None = None) -> None:
        """Run ``function(*args)`` on the cluster for every ``args``; ``on_result(result)`` here, as each ends.

        At most ``window`` tasks are in flight (default: 4 per worker thread, at least 8), and
        ``arguments`` is read lazily, so the driver never holds more than ``window`` inputs.
        A task whose worker dies is rerun elsewhere by the scheduler; one that has killed
        ``distributed.scheduler.allowed-failures`` workers is first given to ``split(args)``: when
        that returns several argument tuples (a batch of cases cut into single cases), those run
        instead, so one bad member does not take the others with it. A task that cannot be split
        is passed to ``on_worker_death(args)``, whose return value stands in for the result
        (``None``: raise).

        Raises
        ------
        ClusterLost
            The scheduler went away or stopped answering.
        """
        from distributed import as_completed
        from distributed.client import FutureCancelledError

        try:
            from distributed.scheduler import KilledWorker
        except ImportError:  # pragma: no cover
            from distributed import KilledWorker

        window = window or max(8, 4 * self.n_threads())
        source: Iterator[tuple] = iter(arguments)
        again: list[tuple] = []  # the parts of split tasks, run before the rest
        inputs: dict[str, tuple] = {}
        done = 0

        def submit_next(queue) -> bool:
            args = again.pop() if again else next(source, None)
            if args is None:
                return False
            try:
                future = self.client.submit(function, *args, pure=False)
            except Exception as exc:
                raise self.lost(f"{type(exc).__name__}: {exc}", done=done) from exc
            inputs[future.key] = args
            queue.add(future)
            return True

        queue = as_completed()
        for _ in range(window):
            if not submit_next(queue):
                break
        for future in queue:
            args = inputs.pop(future.key)
            try:
                result = future.result()
            except KilledWorker as exc:
                parts = split(args) if split is not None else []
                if len(parts) > 1:
                    again.extend(reversed(parts))  # they take the freed slot, one at a time
                    future.release()
                    submit_next(queue)
                    continue
                result = on_worker_death(args) if on_worker_death is not None else None
                if result is None:
                    raise SonoradError(f"a task killed every worker that ran it: {exc}") from exc
            except (FutureCancelledError, OSError, TimeoutError) as exc:
                raise self.lost(f"{type(exc).__name__}: {exc}", done=done) from exc
            except Exception as exc:
                if self.client.status != "running":
                    raise self.lost(f"{type(exc).__name__}: {exc}", done=done) from exc
                raise
            future.release()
            on_result(result)
            done += 1
            submit_next(queue)

    def close(self) -> None:
        try:
            self.client.close(timeout=5)
        except Exception:  # the scheduler may already be gone
            pass
        if self.owned is not None:
            self.owned.close()


def _connect(scheduler, *, shared_fs: bool, timeout: float | None) -> Cluster:
    from distributed import Client

    owned = None
    if isinstance(scheduler, Mapping):
        kind, value = next(iter(scheduler.items()))
        if kind == "slurm":
            owned = _start_slurm(value, None)
            address = owned.scheduler_address
        else:
            address = _address(value)
    elif isinstance(scheduler, str) and scheduler.split(":", 1)[0].lower() == "slurm":
        _, _, count = scheduler.partition(":")
        if count and not count.isdigit():
            raise ConfigError(f"--scheduler {scheduler!r}: write slurm or slurm:N with N the number of jobs")
        owned = _start_slurm(None, int(count) if count else None)
        address = owned.scheduler_address
    elif isinstance(scheduler, str):
        address = _address(scheduler)
    else:
        raise ConfigError(f"scheduler {scheduler!r}: give an address such as tcp://host:8786, or 'slurm'")
    try:
        import dask

        options = {} if timeout is None else {"timeout": timeout}
        # The client's link to the scheduler keeps its last low-level-log-length messages (1000 by
        # default) for debugging, and each holds a task's pickled inputs, here the files' bytes: the
        # driver's memory would grow with the cohort. A short log keeps it flat.
        with dask.config.set({"distributed.admin.low-level-log-length": 8}):
            client = Client(address, set_as_default=True, **options)
    except ValueError as exc:
        if owned is not None:
            owned.close()
        raise ConfigError(f"scheduler {address!r} is not an address Dask understands ({exc}). Fix: write "
                          "tcp://host:port, e.g. tcp://10.0.0.5:8786, or slurm / slurm:N") from exc
    except (OSError, TimeoutError) as exc:
        if owned is not None:
            owned.close()
        raise ClusterLost(
            f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc}). Fix: start it "
            "(`dask scheduler`, then `dask worker ADDRESS` on each machine), check the address and port, or run "
            "without --scheduler; finished cases are cached, so a rerun resumes"
        ) from exc
    return Cluster(client=client, address=address, shared_fs=shared_fs, owned=owned)


class _WithoutTraceback(logging.Filter):
    """Dask's own error lines, kept to one line: sonorad says what happened and what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} {type(exc).__name__}: {exc}".strip()
            record.args = ()
            record.exc_info = record.exc_text = None
        return True


@contextmanager
def _one_line_dask_errors():
    import distributed  # noqa: F401  (sets up Dask's log handlers)

    handlers = list(logging.getLogger("distributed").handlers)
    quiet = _WithoutTraceback()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


@contextmanager
def use_cluster(scheduler=None, *, shared_fs: bool = False, timeout: float | None = None):
    """Run sonorad's parallel work on a Dask cluster inside the ``with`` block.

    Parameters
    ----------
    scheduler : str, mapping or None
        From :func:`resolve_scheduler`. ``None``: nothing changes (local processes, ``--jobs``).
    shared_fs : bool, default False
        Workers read image and mask paths directly (a shared filesystem). Otherwise the file bytes
        travel with each task.
    timeout : float or None
        Seconds to wait for the scheduler when connecting; ``None``: Dask's
        ``distributed.comm.timeouts.connect`` (30 s unless configured).

    Yields
    ------
    Cluster or None

    Examples
    --------
    >>> with use_cluster(None) as cluster:   # no scheduler: today's local behaviour
    ...     cluster is None
    True
    """
    if scheduler is None:
        yield None
        return
    from joblib import parallel_config

    with _one_line_dask_errors():
        cluster = _connect(scheduler, shared_fs=shared_fs, timeout=timeout)
        token = _ACTIVE.set(cluster)
        try:
            with parallel_config(backend="dask", n_jobs=-1):
                yield cluster
        finally:
            _ACTIVE.reset(token)
            cluster.close()


@contextmanager
def fitting_jobs(jobs: int | None) -> Iterator[None]:
    """Let the model fitting inside (grid searches, the LASSO's folds) use ``jobs`` local worker processes.

    scikit-learn's searches run with ``n_jobs=None``, which joblib resolves from the enclosing
    :func:`joblib.parallel_config`: here ``jobs`` loky processes, or every Dask worker inside
    :func:`use_cluster`. Parallelism never changes a result: each candidate and fold is fitted with
    the same data and ``random_state`` wherever it runs. Local workers exit when this process dies
    (:func:`exit_with_parent`).
    """
    import warnings

    from joblib import parallel_config

    if active_cluster() is not None or not jobs or jobs == 1:
        yield
        return
    with warnings.catch_warnings():
        # loky replaces a worker whose memory grew by more than 300 MB since its first job (its
        # leak heuristic; fitting models of different sizes in one worker trips it routinely) or
        # that sat idle past its timeout, and says so with this warning. No job is lost: the
        # replacement runs it. It is loky's bookkeeping, not the user's problem, so it is not shown.
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor",
                                category=UserWarning)
        # each worker exits when this process dies, even by kill -9, instead of holding its memory
        # for the minutes loky's idle timeout would take
        with parallel_config(backend="loky", n_jobs=jobs, initializer=exit_with_parent):
            yield


def active_cluster() -> Cluster | None:
    """The cluster of the enclosing :func:`use_cluster` block, or ``None`` (local processes)."""
    return _ACTIVE.get()


def exit_with_parent(interval: float = 1.0) -> None:
    """Make this (worker) process exit when the process that started it dies, even by ``kill -9``.

    Called in each local worker process as it starts. A daemon thread compares the parent pid
    with the one at start: an orphan is re-parented (to init or a subreaper), and then exits, so
    it cannot hold hundreds of MB for minutes after the driver is gone.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="sonorad-exit-with-parent", daemon=True).start()
