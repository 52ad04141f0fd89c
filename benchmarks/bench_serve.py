"""Speed of the calculator: one request's time by stage, and throughput under concurrent clients.

Two parts, each before and after the calculator scored only the chosen model, kept its PyRadiomics
extractor and ran predictions in worker processes:

1. **Stages** (in this process, one case, ``--repeat`` times, median): image decode, mask, radiomics
   extraction, deep features, models, SHAP (with the nomogram), Grad-CAM, encoding of the answer, and
   the rest of ``predict_case`` (schema, checks, model input table). *before* runs every model of
   the bundle and builds the extractor (validating its parameters) on every call, as the calculator
   did; *after* runs the chosen model with the kept extractor; *roi* adds the ROI sensitivity (the
   chosen model scored again on the eroded and the dilated outline).
2. **Load** (a real server on 127.0.0.1 and a free port, started as a separate process): POST
   /api/predict with an image file, its mask and the case's variables, from 1 client and then from
   ``--concurrency`` clients; throughput, p50, p95, and the resident memory of the server and its
   worker processes (sum, at the end, and the server's peak). Modes: ``before`` (one process, one
   prediction at a time, every model, extractor built per call: the calculator before these
   changes, reproduced by wrapping ``predict_case``), ``inline`` (one process, one at a time, chosen
   model only) and ``workers`` (``--workers`` processes, default one per core). The ROI sensitivity
   (three scorings of the chosen model) is left out unless ``--roi``, so that every mode does the
   same work. Every answer for one case must carry the same probability.

Every server is stopped; each load phase is bounded by ``--time-limit`` seconds.

    nice python benchmarks/bench_serve.py --bundle OUT/model --cases OUT/cohort/cases.csv --split external \
        --json benchmarks/results/serve.json
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

# The server run by the load part: the calculator around the bundle, in one of the three modes.
SERVER = r"""
import sys, uvicorn
from sonorad.bundle import load_bundle
from sonorad.serve.app import create_app
path, port, mode, workers, roi = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
bundle = load_bundle(path)
if mode == "before":  # every model, extractor and parameter validation on every call, as before
    import sonorad.features.radiomics as rad
    real = bundle.predict_case
    def predict_case(*args, models=None, **kwargs):
        rad._validated.clear(); rad._extractors.clear()
        return real(*args, **kwargs)
    bundle.predict_case = predict_case
app = create_app(bundle, workers=workers if mode == "workers" else 0, max_queue=64)
app.calculator.roi_sensitivity = roi and mode != "before"  # the earlier calculator had none
if mode == "workers":
    assert app.calculator.pool.wait_ready(600), "workers did not start"
print("READY", flush=True)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_mib(pid: int) -> dict:
    """RSS of ``pid`` plus its child processes (the workers), and the server's own peak (VmHWM)."""
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = sum(p.memory_info().rss for p in procs if p.is_running())
    peak = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_total_mib": round(total / 2**20), "processes": len(procs),
            "server_peak_rss_mib": round(int(peak["VmHWM"].split()[0]) / 1024)}


def case_rows(cases_csv: Path, schema: list, n_cases: int, split: str | None) -> list[dict]:
    """Image bytes, mask bytes and the bundle's variables of ``n_cases`` cases (of ``split``)."""
    table = pd.read_csv(cases_csv, dtype=str, keep_default_na=False)
    if split is not None:
        table = table[table["split"] == split]
    out = []
    for _, row in table.head(n_cases).iterrows():
        def resolve(p):
            p = Path(p)
            return p if p.is_absolute() else cases_csv.parent / p

        values = {e["name"]: (float(row[e["name"]]) if e["type"] == "numeric" else row[e["name"]])
                  for e in schema if row.get(e["name"], "") != ""}
        out.append({"case_id": str(row["case_id"]), "image": resolve(row["image"]).read_bytes(),
                    "mask": resolve(row["mask"]).read_bytes(), "values": values})
    return out


# --------------------------------------------------------------------------------------- stages


class Stopwatch:
    """Wraps module functions so that each call's time is added to a named stage."""

    def __init__(self):
        self.times: dict[str, float] = {}
        self._undo = []

    def wrap(self, module, name: str, stage: str):
        real = getattr(module, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.times[stage] = self.times.get(stage, 0.0) + time.perf_counter() - t0

        setattr(module, name, timed)
        self._undo.append((module, name, real))

    def add(self, stage: str, seconds: float):
        self.times[stage] = self.times.get(stage, 0.0) + seconds

    def restore(self):
        for module, name, real in reversed(self._undo):
            setattr(module, name, real)


def stages(bundle, case: dict, repeat: int, mode: str) -> dict:
    """Median seconds per stage of ``repeat`` requests of ``case`` (``mode``: before / after / roi)."""
    import sonorad.bundle.explanations as explanations
    import sonorad.bundle.scoring as scoring
    import sonorad.deep.extractor as deep
    import sonorad.features.radiomics as rad
    from sonorad.serve.app import _jsonable, encode_mask, png_data_url
    from sonorad.serve.uploads import UploadLimits, read_uploaded_image, read_uploaded_mask

    limits = UploadLimits()
    runs = []
    for _ in range(repeat + 1):  # the first run warms up (imports, first extractor) and is left out
        watch = Stopwatch()
        watch.wrap(rad, "extract_case", "radiomics extraction")
        watch.wrap(deep, "embed_crops", "deep features")
        watch.wrap(scoring, "_run_models", "models")
        watch.wrap(explanations, "shap_contributions", "SHAP and nomogram")
        watch.wrap(scoring, "_case_nomogram", "SHAP and nomogram")
        watch.wrap(scoring, "_case_gradcam", "Grad-CAM")
        try:
            t0 = time.perf_counter()
            image = read_uploaded_image(case["image"], limits, filename="image.png")
            t1 = time.perf_counter()
            mask = read_uploaded_mask(case["mask"], image.shape, limits, filename="mask.png")
            t2 = time.perf_counter()
            options = {}
            if mode == "before":
                rad._validated.clear()
                rad._extractors.clear()
            else:
                options["models"] = [bundle.chosen]
            if mode == "roi":
                options["roi_sensitivity"] = True
            result = bundle.predict_case(image, mask, case["values"], case_id=case["case_id"], explain=True,
                                         gradcam=True, **options)
            t3 = time.perf_counter()
            body = {"result": _jsonable(result.to_dict()), "mask": encode_mask(mask),
                    "gradcam": None if result.gradcam is None else png_data_url(result.gradcam)}
            json.dumps(body)
            t4 = time.perf_counter()
        finally:
            watch.restore()
        inner = sum(watch.times.values())
        watch.add("image decode", t1 - t0)
        watch.add("mask", t2 - t1)
        watch.add("rest of predict_case", (t3 - t2) - inner)
        watch.add("encoding", t4 - t3)
        watch.add("total", t4 - t0)
        runs.append((watch.times, result.probability))
    runs = runs[1:]
    names = ["image decode", "mask", "radiomics extraction", "deep features", "models", "SHAP and nomogram",
             "Grad-CAM", "rest of predict_case", "encoding", "total"]
    out = {n: round(statistics.median(r[0].get(n, 0.0) for r in runs), 4) for n in names}
    out["probability"] = runs[0][1]
    out["total_min"] = round(min(r[0]["total"] for r in runs), 4)
    return out


# ----------------------------------------------------------------------------------------- load


def start_server(bundle_path: Path, mode: str, workers: int, roi: bool, log) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(bundle_path), str(port), mode, str(workers),
                               "1" if roi else "0"],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    deadline = time.monotonic() + 900
    line = ""
    while "READY" not in line:
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise SystemExit(f"the {mode} server did not start; its log: {log.name}")
        line = server.stdout.readline()
    return server, f"http://127.0.0.1:{port}"


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def post(client, url: str, case: dict) -> tuple[float, int, float | None]:
    files = {"image": ("image.png", case["image"]), "mask": ("mask.png", case["mask"])}
    data = {"variables": json.dumps(case["values"]), "case_id": case["case_id"]}
    start = time.perf_counter()
    response = client.post(f"{url}/api/predict", files=files, data=data, timeout=300)
    elapsed = time.perf_counter() - start
    prob = response.json()["result"]["probability"] if response.status_code == 200 else None
    return elapsed, response.status_code, prob


def load(client, url: str, cases: list, requests: int, concurrency: int, time_limit: float) -> dict:
    stop_at = time.monotonic() + time_limit

    def job(i):
        if time.monotonic() > stop_at:
            return None
        return i % len(cases), post(client, url, cases[i % len(cases)])

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = [r for r in pool.map(job, range(requests)) if r is not None]
    wall = time.perf_counter() - start
    latencies = sorted(r[1][0] for r in results)
    probs: dict[int, set] = {}
    for k, (_, status, p) in results:
        if status == 200:
            probs.setdefault(k, set()).add(p)
    return {"clients": concurrency, "requests": len(results), "errors": sum(r[1][1] != 200 for r in results),
            "wall_s": round(wall, 2), "requests_per_s": round(len(results) / wall, 3),
            "p50_s": round(statistics.median(latencies), 3), "p95_s": round(float(np.quantile(latencies, 0.95)), 3),
            "deterministic": all(len(v) == 1 for v in probs.values()),
            "probabilities": {cases[k]["case_id"]: sorted(v) for k, v in probs.items()}}


def load_mode(bundle_path: Path, mode: str, workers: int, cases: list, args) -> dict:
    import httpx2 as httpx

    log = tempfile.NamedTemporaryFile("w+", prefix=f"bench_serve_{mode}_", suffix=".log", delete=False)
    server, url = start_server(bundle_path, mode, workers, args.roi, log)
    try:
        limits = httpx.Limits(max_connections=args.concurrency + 2, max_keepalive_connections=args.concurrency + 2)
        with httpx.Client(limits=limits) as client:
            for case in cases:  # warm-up: every worker's first case (imports, first extractor)
                for _ in range(max(1, workers)):
                    post(client, url, case)
            memory_start = memory_mib(server.pid)
            one = load(client, url, cases, args.single_requests, 1, args.time_limit)
            many = load(client, url, cases, args.requests, args.concurrency, args.time_limit)
            memory_end = memory_mib(server.pid)
    finally:
        stop_server(server)
        log.close()
    return {"mode": mode, "workers": workers if mode == "workers" else 0,
            "roi_sensitivity": args.roi and mode != "before", "one_client": one,
            f"{args.concurrency}_clients": many, "speedup_vs_one_client": round(many["requests_per_s"] /
                                                                                 one["requests_per_s"], 2),
            "memory_start": memory_start, "memory_end": memory_end, "server_log": log.name}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    parser.add_argument("--cases", type=Path, required=True, help="cases.csv with image, mask and variable columns")
    parser.add_argument("--split", help="use only the cases whose `split` column has this value (e.g. external)")
    parser.add_argument("--n-cases", type=int, default=4, help="distinct cases cycled through by the load part")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per stage measurement")
    parser.add_argument("--requests", type=int, default=48, help="requests of the concurrent load phase")
    parser.add_argument("--single-requests", type=int, default=16, help="requests of the one-client phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, help="worker processes of the workers mode (default: one per core)")
    parser.add_argument("--modes", default="before,inline,workers", help="load modes to run, comma-separated")
    parser.add_argument("--no-load", action="store_true", help="stages only")
    parser.add_argument("--roi", action="store_true",
                        help="load part: the calculator also computes the ROI sensitivity (modes inline, workers); "
                             "default off, so that every mode does the same work")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds for each load phase")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from sonorad.bundle import load_bundle
    from sonorad.serve.workers import default_workers

    bundle = load_bundle(args.bundle)
    cases = case_rows(args.cases, bundle.schema(), args.n_cases, args.split)
    workers = args.workers or default_workers()
    summary = {"bundle": str(args.bundle), "bundle_id": str(bundle.sha256)[:12], "cores": default_workers(),
               "command": " ".join([Path(sys.executable).name, *sys.argv]),
               "load_average_before": list(os.getloadavg()), "stages_s": {}}
    for mode in ("before", "after", "roi"):
        summary["stages_s"][mode] = stages(bundle, cases[0], args.repeat, mode)
        print(mode, json.dumps(summary["stages_s"][mode]), flush=True)
    before, after = summary["stages_s"]["before"]["probability"], summary["stages_s"]["after"]["probability"]
    summary["same_probability_before_after"] = abs(before - after) <= 1e-12
    if not args.no_load:
        summary["load"] = []
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            summary["load"].append(load_mode(args.bundle, mode, workers, cases[: args.n_cases], args))
            print(json.dumps(summary["load"][-1]), flush=True)
    summary["load_average_after"] = list(os.getloadavg())
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    ok = summary["same_probability_before_after"] and all(
        r["one_client"]["errors"] == 0 and r[f"{args.concurrency}_clients"]["errors"] == 0
        and r[f"{args.concurrency}_clients"]["deterministic"] for r in summary.get("load", []))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
