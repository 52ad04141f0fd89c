"""Load test of `sonorad serve` on loopback: N prediction requests at C concurrent, latency and memory.

Starts ``python -m sonorad serve BUNDLE`` as a separate process on 127.0.0.1 and a free port, waits for
``/healthz``, sends one warm-up request, then ``--requests`` POST /api/predict requests from
``--concurrency`` client threads. Each request sends one case of CASES (image file, mask file and the
bundle's variables from the case's row), cycling through ``--n-cases`` cases. Reports p50 / p95 / max
latency, throughput, errors, whether every answer for the same case had the same probability, and the
server's RSS at the start (after the warm-up), at the end and its peak (VmHWM). The server is always
stopped; the whole run is bounded by ``--time-limit`` seconds.

    python benchmarks/bench_serve.py --bundle demo_out/model --cases demo_out/cohort/cases.csv --split external
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def case_requests(bundle_path: Path, cases_csv: Path, n_cases: int, split: str | None = None) -> list[dict]:
    """The multipart pieces of ``n_cases`` cases (of ``split`` only, when given): image, mask, variables."""
    from sonorad.bundle import load_bundle

    schema = load_bundle(bundle_path).schema()
    table = pd.read_csv(cases_csv, dtype=str, keep_default_na=False)
    if split is not None:
        table = table[table["split"] == split]
    out = []
    for _, row in table.head(n_cases).iterrows():
        def resolve(p):
            p = Path(p)
            return p if p.is_absolute() else cases_csv.parent / p

        values = {}
        for entry in schema:
            raw = row.get(entry["name"], "")
            if raw == "":
                continue
            values[entry["name"]] = float(raw) if entry["type"] == "numeric" else raw
        out.append({"case_id": str(row["case_id"]), "image": resolve(row["image"]).read_bytes(),
                    "mask": resolve(row["mask"]).read_bytes(), "variables": json.dumps(values)})
    return out


def one_request(client, url: str, case: dict) -> tuple[float, int, float | None, str]:
    files = {"image": ("image.png", case["image"]), "mask": ("mask.png", case["mask"])}
    data = {"variables": case["variables"], "case_id": case["case_id"]}
    start = time.perf_counter()
    response = client.post(f"{url}/api/predict", files=files, data=data, timeout=120)
    elapsed = time.perf_counter() - start
    body = response.json()
    prob = body["result"]["probability"] if response.status_code == 200 else None
    return elapsed, response.status_code, prob, body.get("error", "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="model bundle folder")
    parser.add_argument("--cases", type=Path, help="cases.csv with image, mask and variable columns")
    parser.add_argument("--build-small", type=Path, metavar="DIR",
                        help="instead: build the test suite's small bundle (tests/conftest.py) in DIR and use it")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--n-cases", type=int, default=4, help="distinct cases cycled through")
    parser.add_argument("--split", help="use only the cases whose `split` column has this value (e.g. external)")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds for the whole load phase")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import httpx2 as httpx

    if args.build_small is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.conftest import build_small_bundle

        small = build_small_bundle(args.build_small)
        args.bundle, args.cases = small.path, small.cases_csv
        external = small.table.loc[small.external_ids].reset_index(drop=True)
        args.cases = args.build_small / "external_cases.csv"
        external.to_csv(args.cases, index=False)
    if args.bundle is None or args.cases is None:
        parser.error("give --bundle and --cases, or --build-small DIR")
    cases = case_requests(args.bundle, args.cases, args.n_cases, args.split)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    # The server's log goes to a file: an undrained pipe would fill up and stall the server.
    log = tempfile.NamedTemporaryFile("w+", prefix="bench_serve_", suffix=".log", delete=False)
    server = subprocess.Popen([sys.executable, "-m", "sonorad", "serve", str(args.bundle), "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client() as client:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"the server stopped; its log: {log.name}")
                try:
                    if client.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start within 120 s")
                time.sleep(0.2)
            warm = one_request(client, url, cases[0])
            if warm[1] != 200:
                raise SystemExit(f"warm-up request failed: {warm}")
            start_mem = rss_mib(server.pid)

            load_start = time.perf_counter()
            stop_at = time.monotonic() + args.time_limit

            def job(i):
                if time.monotonic() > stop_at:
                    return None
                return i % len(cases), one_request(client, url, cases[i % len(cases)])

            with ThreadPoolExecutor(args.concurrency) as pool:
                results = [r for r in pool.map(job, range(args.requests)) if r is not None]
            wall = time.perf_counter() - load_start
            end_mem = rss_mib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        print(f"server log: {log.name}", file=sys.stderr)

    latencies = sorted(r[1][0] for r in results)
    errors = [r for r in results if r[1][1] != 200]
    by_case: dict[int, set] = {}
    for index, (_, status, prob, _) in results:
        if status == 200:
            by_case.setdefault(index, set()).add(prob)
    summary = {
        "requests": len(results), "planned": args.requests, "concurrency": args.concurrency,
        "distinct_cases": len(cases), "errors": len(errors),
        "error_messages": sorted({e[1][3] for e in errors})[:5],
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(float(np.quantile(latencies, 0.95)), 3), "max_s": round(latencies[-1], 3),
        "wall_s": round(wall, 1), "requests_per_s": round(len(results) / wall, 2),
        "deterministic": all(len(p) == 1 for p in by_case.values()),
        "server_rss_start_mib": round(start_mem["VmRSS"]), "server_rss_end_mib": round(end_mem["VmRSS"]),
        "server_peak_rss_mib": round(end_mem["VmHWM"]),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0 if not errors and summary["deterministic"] and len(results) == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
