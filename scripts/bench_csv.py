"""Benchmark: streaming a large CSV through `kerakit.fit_table(..., streaming=True)`.

Generates a synthetic CSV (20 feature columns: 12 numeric, 5 text categories of
5 to 1,000 values, 2 integer codes, 1 boolean; about 4% missing cells; a
binary target) at each row count, then trains one epoch on it through the
streaming path in a fresh process per size, and reports:

- seconds for the whole `fit_table` call (checking pass, one training epoch,
  validation, test report) and rows per second;
- peak resident memory of that whole process (`ru_maxrss`, TensorFlow included).

Targets (issue 3): peak RSS ≤ 1.5 GB at 2M rows, and time at 2M rows ≤ 4.4× the
0.5M time (no worse than linear). Files go to a temporary folder and are deleted.

Usage: python scripts/bench_csv.py [--rows 500000 1000000 2000000] [--json]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NUMERIC, TEXT_SIZES, INTEGER_SIZES = 12, (5, 10, 50, 200, 1000), (4, 8)
CHUNK_ROWS = 100_000


def generate(path, rows, seed=0):
    """Writes the synthetic CSV in chunks (never the whole table in memory)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    weights = rng.normal(size=NUMERIC)
    for start in range(0, rows, CHUNK_ROWS):
        n = min(CHUNK_ROWS, rows - start)
        numbers = rng.normal(size=(n, NUMERIC))
        frame = pd.DataFrame(numbers.round(4), columns=[f"x{i}" for i in range(NUMERIC)])
        logit = numbers @ weights * 0.5
        for i, size in enumerate(TEXT_SIZES):
            codes = rng.integers(0, size, n)
            frame[f"c{i}"] = np.char.add(f"c{i}_", codes.astype(str))
            logit += (codes % 3 == 0) * 0.5
        for i, size in enumerate(INTEGER_SIZES):
            codes = rng.integers(0, size, n)
            frame[f"k{i}"] = codes
            logit -= (codes == 1) * 0.7
        flag = rng.random(n) < 0.3
        frame["b0"] = flag
        logit += flag * 0.8
        for column in frame.columns:
            hole = rng.random(n) < 0.04
            frame[column] = frame[column].astype(object).where(~hole, None)
        frame["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
        frame.to_csv(path, mode="a" if start else "w", header=start == 0, index=False)


def train_one(path):
    """Runs in a fresh process: one streamed epoch; prints JSON with time and peak RSS."""
    import kerakit as kk

    start = time.perf_counter()
    result = kk.fit_table(path, target="y", streaming=True, epochs=1, seed=0, units=(64, 32))
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({
        "seconds": seconds,
        "peak_rss_mb": peak_kib / 1024,
        "splits": result.splits,
        "test_accuracy": result.report["test"]["accuracy"],
        "test_roc_auc": result.report["test"].get("roc_auc"),
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000, 1_000_000, 2_000_000])
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--train-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_one:
        train_one(args.train_one)
        return 0

    results = []
    with tempfile.TemporaryDirectory(prefix="kerakit-bench-csv-") as folder:
        for rows in args.rows:
            path = os.path.join(folder, f"synthetic_{rows}.csv")
            generate(path, rows)
            size_mb = os.path.getsize(path) / 2**20
            out = subprocess.run([sys.executable, __file__, "--train-one", path],
                                 capture_output=True, text=True, check=False)
            os.remove(path)
            if out.returncode:
                sys.stderr.write(out.stderr[-3000:])
                return 1
            run = json.loads(out.stdout.strip().splitlines()[-1])
            run.update(rows=rows, file_mb=size_mb, rows_per_second=rows / run["seconds"])
            results.append(run)
            if not args.json:
                print(f"{rows:>9,} rows  {size_mb:7.1f} MB  {run['seconds']:7.1f} s  "
                      f"{run['rows_per_second']:9,.0f} rows/s  peak RSS {run['peak_rss_mb']:7.0f} MB  "
                      f"test AUC {run['test_roc_auc']:.3f}", flush=True)
    first, last = results[0], results[-1]
    summary = {
        "runs": results,
        "time_ratio": last["seconds"] / first["seconds"],
        "rows_ratio": last["rows"] / first["rows"],
        "peak_rss_mb_at_largest": last["peak_rss_mb"],
        "targets_met": {
            "peak_rss_le_1.5GB": last["peak_rss_mb"] <= 1.5 * 1024,
            "time_ratio_le_1.1x_linear": last["seconds"] / first["seconds"]
            <= 1.1 * last["rows"] / first["rows"],
        },
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"time ratio {summary['time_ratio']:.2f}× for {summary['rows_ratio']:.0f}× the rows; "
              f"targets met: {summary['targets_met']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
