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


def test_twenty_tables_with_tree_friendly_and_high_cardinality_ones(bench):
    assert len(bench.TABLES) >= 20
    for name in ("threshold_flag", "lookup50", "steps", "churn_like"):
        frame, task, categorical = bench.TABLES[name]()
        assert "target" in frame and len(frame) >= 1_000 and set(categorical) <= set(frame.columns)
        assert not frame.drop(columns="target").isna().any().any()
    lookup, _, (code,) = bench.lookup50()
    assert lookup[code].nunique() == 50
    churn, task, (state,) = bench.churn_like()
    assert task == "classification" and churn[state].nunique() == 51
    assert set(churn["target"]) == {0, 1} and 0.05 < churn["target"].mean() < 0.5
    pytest.importorskip("statsmodels")
    fertility, task, (country,) = bench.TABLES["fertility"]()
    assert task == "regression" and fertility[country].nunique() > 200 and len(fertility) > 10_000
    assert not fertility["target"].isna().any() and fertility["year"].between(1960, 2020).all()
    grunfeld, _, (firm,) = bench.TABLES["grunfeld"]()
    assert len(grunfeld) == 220 and grunfeld[firm].nunique() == 11
    elnino, _, (month,) = bench.TABLES["elnino"]()
    assert elnino[month].nunique() == 12 and len(elnino) == 732


def test_fit_time_table_has_ten_columns_with_two_categories(bench):
    frame, task, categorical = bench.fit_time_table(rows=300)
    assert frame.shape == (300, 11) and task == "regression" and categorical == ["kind", "shop"]
    assert frame["kind"].nunique() == 5 and frame["shop"].nunique() > 30
    assert bench.fit_time_table(rows=300)[0].equals(frame)  # seeded


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
    assert "new fit seconds / hgb's: median 1.0x (largest 1.0x on counts)." in text
    # A table within the margin and fast fits meet the targets.
    rows = _rows({("wine", "new"): [0.97], ("wine", "hgb"): [0.975]}, task="classification")
    text = bench.summary(rows, ["new", "hgb"])
    assert "0.02 R² below hgb — met" in text and "20,000-row" not in text


def test_summary_reports_the_median_fit_time_ratio(bench):
    rows = (_rows({("counts", "new"): [0.5], ("wine", "new"): [0.9], ("iris", "new"): [0.9]},
                  seconds=12.0)
            + _rows({("counts", "hgb"): [0.5], ("wine", "hgb"): [0.9]}, seconds=2.0)
            + _rows({("iris", "hgb"): [0.9]}, seconds=0.5))
    text = bench.summary(rows, ["new", "hgb"])
    assert "new fit seconds / hgb's: median 6.0x (largest 24.0x on iris)." in text


def test_fit_time_mode_compares_fit_seconds_with_hgb_on_one_split(bench):
    text = bench.fit_time(["hgb", "linear"], rows=400)
    assert text.startswith("Fit time on a generated 400-row x 10-column table, one 80/20 split")
    hgb, linear = (line.split(" | ") for line in text.splitlines()[-2:])
    assert hgb[0] == "| hgb" and hgb[-1] == "1.0x |" and linear[0] == "| linear"
    assert 0.0 < float(linear[3]) < 1.0 and float(hgb[1]) > 0  # R² on the held-out fifth
