"""`simulate`: active learning replayed where every label is known."""

import json

import numpy as np
import pytest

import kerakit as kk
from kerakit import active
from kerakit.errors import ConfigError, UnknownNameError

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends

# Simulation -------------------------------------------------------------------------


@pytest.mark.once
def test_simulate_uses_only_the_pool_to_choose_queries(digit_pool):
    x0, y0, pool, y_pool, x_test, y_test = digit_pool
    seen = []

    def spy(model, x_pool, n):
        seen.append(np.asarray(x_pool))
        return active.get_strategy("margin")(model, x_pool, n)

    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    x_val, y_val = x_test[:150], y_test[:150]
    result = kk.simulate(spec, pool[:150], y_pool[:150], x_val, y_val, strategies=[spy],
                         initial=20, budget=40, step=10, seeds=(0,), x_test=x_test[150:],
                         y_test=y_test[150:], units=(32,), epochs=20, teach_epochs=3)
    assert result.labels.tolist() == [20, 30, 40]
    assert result.strategies == ["random", "spy"]
    assert [len(x) for x in seen] == [130, 120]  # the unlabelled rest of the pool, shrinking
    pool_rows = {row.tobytes() for row in pool[:150]}
    assert all(row.tobytes() in pool_rows for x in seen for row in x)
    for name in result.strategies:
        for split in ("val", "test"):
            curve = result.curves[name][split]
            assert curve.shape == (1, 3) and np.all((curve > 0.2) & (curve <= 1.0))
    # Both strategies start from the same labelled rows, hence the same first model.
    assert result.curves["random"]["val"][0, 0] == result.curves["spy"]["val"][0, 0]


def test_simulate_refuses_bad_arguments(digit_pool):
    _, _, pool, y_pool, x_test, y_test = digit_pool
    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    with pytest.raises(ConfigError, match="larger than the pool"):
        kk.simulate(spec, pool, y_pool, x_test, y_test, budget=1000)
    with pytest.raises(UnknownNameError, match="Unknown metric 'acuracy'. Did you mean 'accuracy'"):
        kk.simulate(spec, pool, y_pool, x_test, y_test, metric="acuracy")
    with pytest.raises(ConfigError, match="both `x_test` and `y_test`"):
        kk.simulate(spec, pool, y_pool, x_test, y_test, x_test=x_test)
    with pytest.raises(ConfigError, match="'random' is listed twice"):
        kk.simulate(spec, pool, y_pool, x_test, y_test, strategies=[active.get_strategy("random")])


def synthetic_result():
    labels = [10, 20, 30, 40]
    curves = {
        "random": [[0.50, 0.60, 0.70, 0.80], [0.50, 0.60, 0.80, 0.90]],
        "margin": [[0.50, 0.80, 0.90, 0.90], [0.50, 0.70, 0.90, 0.95]],
        "entropy": [[0.50, 0.40, 0.60, 0.85], [0.50, 0.50, 0.70, 0.80]],
    }
    curves = {k: {"val": np.array(v), "test": None} for k, v in curves.items()}
    return active.Simulation(labels, curves, "accuracy", "random", (0, 1), {k: 1.0 for k in curves})


def test_labels_to_reach_and_an_honest_comparison():
    result = synthetic_result()
    needed = result.labels_to_reach(0.8)
    assert needed["random"] == {"per_seed": [40, 30], "mean": 35.0, "reached": 2}
    assert needed["margin"] == {"per_seed": [20, 30], "mean": 25.0, "reached": 2}
    assert needed["entropy"] == {"per_seed": [40, 40], "mean": 40.0, "reached": 2}
    assert result.labels_to_reach(0.95)["random"] == {"per_seed": [None, None], "mean": None, "reached": 0}
    rows = {(r["strategy"], r["target"]): r for r in result.compare(targets=[0.8, 0.95])}
    assert rows["margin", 0.8]["verdict"] == "beats" and rows["margin", 0.8]["ratio"] == pytest.approx(25 / 35)
    assert rows["entropy", 0.8]["verdict"] == "does not beat"
    assert rows["margin", 0.95]["verdict"] == "beats"  # one seed got there, random never did
    assert rows["entropy", None]["worse_than_baseline_at"] == [20, 30, 40]
    text = "\n".join(result.summary(targets=[0.8]))
    assert "entropy: val accuracy >= 0.8: 40 labels vs random 35 labels (1.14x random's labels) -> does not beat random" in text
    assert "entropy: mean val accuracy over the curve" in text and "worse than random at 20-40 labels" in text
    assert "margin" in text and "never worse than random" in text


def test_simulation_plot_and_json(tmp_path):
    from matplotlib.figure import Figure

    result = synthetic_result()
    figure = result.plot(targets=[0.9])
    assert isinstance(figure, Figure)
    assert [line.get_label() for line in figure.axes[0].get_lines()][:3] == ["random", "margin", "entropy"]
    figure.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert json.loads(json.dumps(result.to_dict()))["curves"]["margin"]["val"][1] == [0.5, 0.7, 0.9, 0.95]
    with pytest.raises(ConfigError, match="no test curve"):
        result.plot(split="test")
