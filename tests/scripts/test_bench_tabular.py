"""scripts/bench_tabular.py: its tables need no download, and its summary computes
ranks, win/tie/loss and the targets from what was measured."""

import importlib.util
import pathlib

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "bench_tabular.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_tabular", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_least_ten_tables_load_without_a_download(bench):
    assert len(bench.TABLES) >= 10
    for name in ("counts", "heavy_tail", "categories", "friedman3", "diabetes", "iris"):
        frame, task, categorical = bench.TABLES[name]()
        assert "target" in frame and len(frame) >= 150 and task in ("regression", "classification")
        assert set(categorical) <= set(frame.columns)
    folds = bench.folds(*bench.TABLES["iris"]()[:2], 5)
    assert len(folds) == 5 and sorted(np.concatenate([test for _, test in folds])) == list(range(150))


def _rows(scores, task="regression", rows=100, seconds=1.0):
    return [{"table": t, "task": task, "rows": rows, "fold": f, "model": m, "score": s,
             "seconds": seconds} for (t, m), values in scores.items() for f, s in enumerate(values)]


def test_summary_ranks_counts_and_checks_the_targets(bench):
    rows = _rows({("counts", "new"): [0.5, 0.3], ("counts", "hgb"): [0.2, 0.2],
                  ("diabetes", "new"): [0.40, 0.40], ("diabetes", "hgb"): [0.45, 0.45]},
                 rows=20_000, seconds=70.0)
    text = bench.summary(rows, ["new", "hgb"])
    assert "| counts | 20000 | R² | **0.4000** (70.0) | 0.2000 (70.0) |" in text
    assert "Average rank (1 best): new 1.50, hgb 1.50." in text
    assert "new vs hgb: 1 win / 0 tie / 1 loss (worst gap -0.0500 on diabetes)." in text
    assert "average rank better than hgb's: 1.50 vs 1.50 — MISSED" in text
    assert "MISSED on diabetes (-0.0500)" in text  # more than 0.02 R² below
    assert "slowest 70.0 s" in text and "— MISSED" in text.splitlines()[-1]
    # A table within the margin and fast fits meet the targets.
    rows = _rows({("wine", "new"): [0.97], ("wine", "hgb"): [0.975]}, task="classification")
    text = bench.summary(rows, ["new", "hgb"])
    assert "0.02 R² below hgb — met" in text and "20,000-row" not in text
