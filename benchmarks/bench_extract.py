"""Benchmark: PyRadiomics extraction over the BUS-BRA cohort with 1 and 2 worker processes.

Each run starts from an empty feature cache, so every image is extracted. Prints seconds per
image, total wall time and peak resident memory (this process and, separately, its largest worker
process) as a markdown table.

Usage::

    python benchmarks/bench_extract.py                      # all 930 images, --jobs 1 then 2
    python benchmarks/bench_extract.py --limit 10           # quick check
    python benchmarks/bench_extract.py path/to/cases.csv --jobs 2 --params my.yaml
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CASES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bus_bra" / "cases.csv"


def _max_rss_mib(who: int) -> float:
    # ru_maxrss is in KiB on Linux; for RUSAGE_CHILDREN it is the largest terminated child, not a sum
    return resource.getrusage(who).ru_maxrss / 1024


def run_once(table, jobs: int, params) -> dict:
    from sonorad.features.extract import extract_radiomics

    with tempfile.TemporaryDirectory(prefix="sonorad-bench-cache-") as cache_dir:
        start = time.perf_counter()
        features, failures = extract_radiomics(table, params=params, cache=cache_dir, jobs=jobs, progress=False)
        wall = time.perf_counter() - start
    _shutdown_workers()  # so the workers' peak memory shows in RUSAGE_CHILDREN
    return {"jobs": jobs, "images": len(table), "ok": len(features), "failed": len(failures),
            "features": features.shape[1], "wall_s": wall, "s_per_image": wall / max(len(table), 1),
            "main_rss_mib": _max_rss_mib(resource.RUSAGE_SELF),
            "worker_rss_mib": _max_rss_mib(resource.RUSAGE_CHILDREN)}


def _shutdown_workers() -> None:
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True, kill_workers=False)


def markdown(rows: list[dict]) -> str:
    lines = ["| jobs | images | ok | failed | features | wall (s) | s / image | peak RSS main (MiB) | peak RSS worker (MiB) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['jobs']} | {r['images']} | {r['ok']} | {r['failed']} | {r['features']} | "
                     f"{r['wall_s']:.1f} | {r['s_per_image']:.3f} | {r['main_rss_mib']:.0f} | "
                     f"{r['worker_rss_mib']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="?", default=str(DEFAULT_CASES), help="cohort table (default: BUS-BRA)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases (quick run)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="worker counts to time (default 1 2)")
    parser.add_argument("--params", default=None, help="PyRadiomics parameter file (default: sonorad's)")
    args = parser.parse_args(argv)

    from sonorad.cohort import read_cases
    from sonorad.features.radiomics import load_params

    table = read_cases(args.cases)
    if args.limit is not None:
        table = table.iloc[: args.limit]
    params = load_params(args.params)
    # import PyRadiomics once before timing, so the first run does not pay for it
    import radiomics.featureextractor  # noqa: F401

    rows = []
    for jobs in args.jobs:
        row = run_once(table, jobs, params)
        rows.append(row)
        print(f"jobs={jobs}: {row['wall_s']:.1f} s", file=sys.stderr)
    print(f"cohort: {args.cases} ({len(table)} images)")
    print(f"command: python benchmarks/bench_extract.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
