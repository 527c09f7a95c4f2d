"""Benchmark: kerakit's table models against scikit-learn's HistGradientBoosting.

Tables that need no download: scikit-learn's bundled `load_diabetes`,
`load_breast_cancer`, `load_wine` and `load_digits` (as a 64-column table),
`make_friedman1` (2,000 rows), and a generated 20,000-row count regression
with a long tail ("counts": a negative-binomial target whose mean is a
nonlinear function of skewed numbers, a 10- and a 60-level category, a
boolean, and 5 % missing cells in one column).

For each table and seed the same 20 % of rows is held out (stratified for
classification); every model sees only the other 80 %. It compares:

- `new`: `kk.fit_table` with its defaults (the "table" body, `TABLE_DEFAULTS`);
- `old`: the previous default (`body="mlp"`, 50 epochs, patience 5, a
  standardized target);
- `hgb`: `HistGradientBoostingRegressor/Classifier()` with default settings
  (categories as pandas categoricals);
- `linear`: Ridge / LogisticRegression on standardized numbers and one-hot categories.

It prints R² (regression) or accuracy (classification) on the held-out rows
and the fit seconds, per table averaged over the seeds, then the average
rank and win/tie/loss against HistGradientBoosting (a tie is within 0.01 R² or
1 accuracy point).

Usage: python scripts/bench_table.py [--tables counts diabetes ...] [--seeds 0 1 2]
       [--models new old hgb linear] [--json]
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TIE = 0.01


def _frame(x, y, names):
    import pandas as pd

    frame = pd.DataFrame(x, columns=[str(n) for n in names])
    frame["target"] = y
    return frame


def sklearn_table(name):
    import numpy as np
    from sklearn import datasets

    loader = {"diabetes": datasets.load_diabetes, "breast_cancer": datasets.load_breast_cancer,
              "wine": datasets.load_wine, "digits": datasets.load_digits}[name]
    data = loader()
    names = getattr(data, "feature_names", None)
    if names is None or len(names) != data.data.shape[1]:
        names = [f"x{i}" for i in range(data.data.shape[1])]
    y = data.target.astype(np.float64) if name == "diabetes" else data.target
    return _frame(data.data, y, names), "regression" if name == "diabetes" else "classification"


def friedman():
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=2000, n_features=8, noise=1.0, random_state=0)
    return _frame(x, y, [f"x{i}" for i in range(8)]), "regression"


def counts(rows=20_000, seed=0):
    """A count target with a long tail from mixed numbers and categories (known structure)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.8, rows)
    age = rng.uniform(18, 90, rows)
    distance = rng.exponential(5, rows)
    score = rng.normal(0, 1, rows)
    region = rng.choice([f"r{i}" for i in range(10)], rows, p=np.linspace(1, 3, 10) / 20)
    shop = rng.integers(0, 60, rows)
    member = rng.random(rows) < 0.3
    region_effect = dict(zip([f"r{i}" for i in range(10)], rng.normal(0, 0.5, 10), strict=True))
    shop_effect = rng.normal(0, 0.4, 60)
    log_mean = (0.4 * np.log(income / 20_000) + 0.9 * np.sin(age / 12) - 0.25 * np.sqrt(distance)
                + 0.5 * score * member + 0.3 * np.maximum(score, 0) ** 2
                + np.vectorize(region_effect.get)(region) + shop_effect[shop] + 0.5)
    mean = np.exp(log_mean)
    dispersion = 1.2  # negative binomial: variance = mean + mean² / dispersion
    y = rng.negative_binomial(dispersion, dispersion / (dispersion + mean))
    frame = pd.DataFrame({"income": income.round(0), "age": age.round(1),
                          "distance": distance.round(2), "score": score.round(3),
                          "region": region, "shop": shop, "member": member, "target": y})
    frame.loc[rng.random(rows) < 0.05, "distance"] = np.nan
    return frame, "regression"


TABLES = {
    "counts": counts,
    "diabetes": lambda: sklearn_table("diabetes"),
    "friedman1": friedman,
    "breast_cancer": lambda: sklearn_table("breast_cancer"),
    "wine": lambda: sklearn_table("wine"),
    "digits": lambda: sklearn_table("digits"),
}
CATEGORICAL = {"counts": ["region", "shop"]}


def score(task, y_true, y_pred):
    from sklearn.metrics import accuracy_score, r2_score

    if task == "regression":
        return r2_score(y_true, y_pred)
    return accuracy_score(y_true, y_pred.astype(y_true.dtype))  # kerakit answers with objects


def fit_kerakit(train, test, task, seed, table, **options):
    import kerakit as kk

    if task != "regression":
        options.pop("target_transform", None)

    types = {c: "string_categorical" for c in CATEGORICAL.get(table, [])}
    result = kk.fit_table(train, target="target", task=task, types=types or None, seed=seed,
                          validation=0.15, test=0.0, **options)
    return kk.predict_table(result.model, test.drop(columns="target"))


def _sklearn_frames(train, test, table):
    x_train, x_test = train.drop(columns="target"), test.drop(columns="target")
    for column in CATEGORICAL.get(table, []):
        categories = sorted(train[column].astype(str).unique())
        for x in (x_train, x_test):
            x[column] = x[column].astype(str).astype(
                __import__("pandas").CategoricalDtype(categories))
    return x_train, x_test


def fit_hgb(train, test, task, seed, table):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    x_train, x_test = _sklearn_frames(train, test, table)
    model = (HistGradientBoostingRegressor if task == "regression"
             else HistGradientBoostingClassifier)(categorical_features="from_dtype",
                                                  random_state=seed)
    return model.fit(x_train, train["target"]).predict(x_test)


def fit_linear(train, test, task, seed, table):
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x_train, x_test = train.drop(columns="target"), test.drop(columns="target")
    categories = CATEGORICAL.get(table, [])
    numbers = [c for c in x_train.columns if c not in categories]
    prepare = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), numbers),
        (OneHotEncoder(handle_unknown="ignore"), categories))
    estimator = RidgeCV() if task == "regression" else LogisticRegression(max_iter=2000)
    return make_pipeline(prepare, estimator).fit(x_train, train["target"]).predict(x_test)


MODELS = {
    "new": lambda *a: fit_kerakit(*a),
    "old": lambda *a: fit_kerakit(*a, body="mlp", epochs=50, patience=5,
                                  target_transform="standardize"),
    "hgb": fit_hgb,
    "linear": fit_linear,
}


def run(tables, seeds, models):
    from sklearn.model_selection import train_test_split

    rows = []
    for table in tables:
        frame, task = TABLES[table]()
        for seed in seeds:
            strata = frame["target"] if task == "classification" else None
            train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=strata)
            for name in models:
                start = time.perf_counter()
                predicted = MODELS[name](train, test, task, seed, table)
                seconds = time.perf_counter() - start
                value = score(task, test["target"].to_numpy(), predicted)
                rows.append({"table": table, "task": task, "rows": len(frame), "seed": seed,
                             "model": name, "score": float(value), "seconds": seconds})
                print(f"{table:14s} seed {seed} {name:7s} {value:8.4f} {seconds:7.1f}s", flush=True)
    return rows


def summary(rows, models):
    import numpy as np

    tables = list(dict.fromkeys(r["table"] for r in rows))
    means = {(t, m): (np.mean([r["score"] for r in rows if r["table"] == t and r["model"] == m]),
                      np.mean([r["seconds"] for r in rows if r["table"] == t and r["model"] == m]))
             for t in tables for m in models}
    lines = ["| table | rows | metric | " + " | ".join(f"{m} (s)" for m in models) + " |",
             "|---|---|---|" + "---|" * len(models)]
    ranks = {m: [] for m in models}
    for t in tables:
        first = next(r for r in rows if r["table"] == t)
        metric = "R²" if first["task"] == "regression" else "accuracy"
        cells = [f"{means[t, m][0]:.4f} ({means[t, m][1]:.1f})" for m in models]
        lines.append(f"| {t} | {first['rows']} | {metric} | " + " | ".join(cells) + " |")
        order = sorted(models, key=lambda m: -means[t, m][0])
        for m in models:
            ranks[m].append(1 + order.index(m))
    lines.append("")
    lines.append("average rank: " + ", ".join(f"{m} {np.mean(ranks[m]):.2f}" for m in models))
    if "hgb" in models:
        for m in models:
            if m == "hgb":
                continue
            diffs = [means[t, m][0] - means[t, "hgb"][0] for t in tables]
            win = sum(d > TIE for d in diffs)
            loss = sum(d < -TIE for d in diffs)
            lines.append(f"{m} vs hgb: {win} win / {len(diffs) - win - loss} tie / {loss} loss "
                         f"(worst gap {min(diffs):+.4f})")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", action="store_true", help="print the raw rows as JSON too")
    args = parser.parse_args()
    rows = run(args.tables, args.seeds, args.models)
    print(summary(rows, args.models))
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
