"""Active learning: strategies on models with known outputs, the learner, the simulation helper."""

import json

import numpy as np
import pytest

import kerakit as kk
from kerakit import active
from kerakit.errors import ConfigError, DataError, UnknownNameError
from kerakit.metadata import attach_spec

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends


def probability_model(width):
    """A model whose outputs are softmax(x) (or sigmoid(x) for width 1): inputs are logits."""
    import keras

    activation = "sigmoid" if width == 1 else "softmax"
    return keras.Sequential([keras.Input((width,)), keras.layers.Activation(activation)])


def dropout_model(weights, rate=0.5, spec=None, batchnorm=False):
    """Input → (BatchNorm) → Dropout → Dense with fixed weights and zero bias (→ softmax if 3 wide)."""
    import keras

    weights = np.asarray(weights, dtype="float32")
    layers = [keras.Input((weights.shape[0],))]
    if batchnorm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.Dropout(rate, seed=1),
               keras.layers.Dense(weights.shape[1], activation="softmax" if weights.shape[1] > 1 else None)]
    model = keras.Sequential(layers)
    model.layers[-1].set_weights([weights, np.zeros(weights.shape[1], "float32")])
    if spec is not None:
        attach_spec(model, spec)
    return model


# Uncertainty strategies ----------------------------------------------------------


def test_least_confidence_margin_and_entropy_rank_known_probabilities():
    from scipy.stats import entropy

    logits = np.array([
        [4.0, 0.0, 0.0],   # confident
        [1.0, 1.0, -9.0],  # a two-way tie: the smallest margin
        [0.5, 0.0, 0.0],   # near uniform: lowest top probability, highest entropy
    ], dtype="float32")
    model = probability_model(3)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    picks = {name: active.get_strategy(name)(model, logits, 3) for name in
             ("least_confidence", "margin", "entropy")}

    assert picks["least_confidence"].indices.tolist() == [2, 1, 0]
    assert picks["margin"].indices.tolist() == [1, 2, 0]
    assert picks["entropy"].indices.tolist() == [2, 1, 0]
    top2 = np.sort(p, axis=1)[:, -2:]
    np.testing.assert_allclose(picks["margin"].scores, (1 - (top2[:, 1] - top2[:, 0]))[[1, 2, 0]], rtol=1e-5)
    np.testing.assert_allclose(picks["entropy"].scores, entropy(p, axis=1)[[2, 1, 0]], rtol=1e-5)
    np.testing.assert_allclose(picks["least_confidence"].scores, (1 - p.max(1))[[2, 1, 0]], rtol=1e-5)


def test_binary_sigmoid_outputs_are_read_as_two_classes():
    model = probability_model(1)
    logits = np.array([[-4.0], [0.1], [3.0], [-0.5]], dtype="float32")
    for name in ("least_confidence", "margin", "entropy"):
        assert active.get_strategy(name)(model, logits, 2).indices.tolist() == [1, 3], name


def test_random_sampling_is_seeded_distinct_and_has_no_scores():
    pool = np.zeros((50, 2), dtype="float32")
    first = active.get_strategy("random")(None, pool, 10, seed=3)
    again = active.get_strategy("random")(None, pool, 10, seed=3)
    other = active.get_strategy("random")(None, pool, 10, seed=4)
    assert first.indices.tolist() == again.indices.tolist() != other.indices.tolist()
    assert len(set(first.indices.tolist())) == 10 and np.isnan(first.scores).all()


def test_bald_finds_disagreement_that_entropy_cannot_see():
    # Row 0 is uniform under every dropout mask (no information about the
    # weights); row 1 is uniform with all inputs kept but flips between class 0
    # and class 1 as dropout removes one input or the other.
    model = dropout_model([[2.0, -2.0, 0.0], [-2.0, 2.0, 0.0]])
    pool = np.array([[0.0, 0.0], [3.0, 3.0]], dtype="float32")
    entropy = active.uncertainty(model, pool, "entropy")
    np.testing.assert_allclose(entropy, [np.log(3), np.log(3)], rtol=1e-5)  # a tie: no preference
    bald = active.uncertainty(model, pool, "bald", passes=50)
    assert bald[0] == pytest.approx(0.0, abs=1e-6) and bald[1] > 0.2
    assert active.get_strategy("bald")(model, pool, 1, passes=50).indices.tolist() == [1]


def test_monte_carlo_samples_vary_and_leave_batchnorm_statistics_alone():
    model = dropout_model([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], batchnorm=True)
    pool = np.random.default_rng(0).normal(size=(30, 2)).astype("float32") * 3 + 5
    before = [v.numpy().copy() for v in model.layers[0].non_trainable_variables]
    samples = active.predictive_samples(model, pool, passes=7)
    assert samples.shape == (7, 30, 3)
    assert samples.std(axis=0).max() > 0.01  # the passes differ: dropout was on
    for variable, value in zip(model.layers[0].non_trainable_variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_monte_carlo_passes_keep_image_shaped_inputs_intact():
    import keras

    def image_model(rate):
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dropout(rate),
                                 keras.layers.Dense(3, activation="softmax")])

    images = np.random.default_rng(0).uniform(size=(5, 4, 4, 1)).astype("float32")
    samples = active.predictive_samples(image_model(0.5), images, passes=4)
    assert samples.shape == (4, 5, 3) and samples.std(axis=0).max() > 0
    # A dropout layer that (almost) never drops: every tiled pass must equal predict.
    model = image_model(1e-9)
    expected = model.predict(images, verbose=0)
    for sample in active.predictive_samples(model, images, passes=4):
        np.testing.assert_allclose(sample, expected, rtol=1e-5)


def test_monte_carlo_dropout_refuses_a_model_without_dropout():
    with pytest.raises(ConfigError, match="has none.*ensemble_size"):
        active.predictive_samples(probability_model(3), np.zeros((4, 3), "float32"), passes=5)


def test_predictive_std_by_dropout_and_by_ensemble_picks_the_least_certain_rows():
    spec = kk.ProblemSpec(task="regression")
    pool = np.array([[0.1], [5.0], [-2.0], [0.0]], dtype="float32")
    # y = x with half of the inputs dropped: the spread grows with |x|.
    mc = dropout_model([[1.0]], spec=spec)
    assert active.get_strategy("std")(mc, pool, 2, passes=30).indices.tolist() == [1, 2]
    # Two members that disagree more the farther x is from 0.
    members = [dropout_model([[w]], rate=0.0, spec=spec) for w in (1.0, -1.0)]
    result = active.get_strategy("std")(members, pool, 4)
    assert result.indices.tolist() == [1, 2, 0, 3]
    np.testing.assert_allclose(result.scores, [5.0, 2.0, 0.1, 0.0], rtol=1e-5)


def test_strategies_refuse_the_wrong_task():
    regression = dropout_model([[1.0]], spec=kk.ProblemSpec(task="regression"))
    with pytest.raises(ConfigError, match="'bald' applies to binary, multiclass"):
        active.get_strategy("bald")(regression, np.zeros((3, 1), "float32"), 1)
    with pytest.raises(ConfigError, match="'std' applies to regression"):
        active.get_strategy("std")(dropout_model([[1.0, 0.0, 0.0]], spec=kk.ProblemSpec(
            task="multiclass", num_classes=3)), np.zeros((3, 1), "float32"), 1)


def test_diverse_batch_spreads_picks_over_clusters_of_near_duplicates():
    rng = np.random.default_rng(0)
    tie_a = np.array([1.0, 1.0, -9.0]) + rng.normal(0, 1e-3, (6, 3))      # the most uncertain group
    tie_b = np.array([-9.0, 1.0, 1.05]) + rng.normal(0, 1e-3, (6, 3))     # almost as uncertain, elsewhere
    confident = np.array([8.0, 0.0, 0.0]) + rng.normal(0, 1e-3, (10, 3))
    pool = np.concatenate([tie_a, tie_b, confident]).astype("float32")
    model = probability_model(3)
    plain = active.get_strategy("margin")(model, pool, 2)
    spread = active.get_strategy("diverse")(model, pool, 2, seed=0)
    assert set(plain.indices.tolist()) <= set(range(6))  # both from the same group
    assert {int(i) // 6 for i in spread.indices} == {0, 1}  # one from each group
    assert spread.scores[0] >= spread.scores[1] > 0.9


# Custom strategies and their return values -----------------------------------------


def test_a_custom_strategy_returning_two_indices_is_read_as_indices():
    # modAL read any two-element return as (indices, instances).
    pool = np.zeros((10, 2), "float32")
    result = active.get_strategy(lambda model, x_pool, n: [7, 3])(None, pool, 2)
    assert result.indices.tolist() == [7, 3] and np.isnan(result.scores).all()
    result = active.get_strategy(lambda model, x_pool, n: (4, 5))(None, pool, 2)
    assert result.indices.tolist() == [4, 5]
    result = active.get_strategy(lambda model, x_pool, n: (np.array([1, 2]), [0.9, 0.8]))(None, pool, 2)
    assert result.indices.tolist() == [1, 2] and result.scores.tolist() == [0.9, 0.8]


@pytest.mark.parametrize("returned, message", [
    ([1.5, 2.0], "integer pool indices"),
    ([3, 3], "2 distinct indices"),
    ([1, 2, 3], "2 distinct indices"),
    ([1, 99], r"outside the pool \[0, 10\)"),
])
def test_a_custom_strategy_with_a_bad_return_gets_a_clear_error(returned, message):
    with pytest.raises(ConfigError, match=message):
        active.get_strategy(lambda model, x_pool, n: returned)(None, np.zeros((10, 2), "float32"), 2)


def test_register_query_strategy_and_names():
    @kk.register_query_strategy("farthest_test", tasks=("regression",))
    def farthest(model, x_pool, n):
        return np.argsort(-np.abs(x_pool[:, 0]))[:n]

    try:
        strategy = active.get_strategy("farthest_test")
        assert strategy.tasks == ("regression",)
        assert strategy(None, np.array([[1.0], [-3.0], [2.0]]), 2).indices.tolist() == [1, 2]
    finally:
        active.STRATEGIES.pop("farthest_test")
    assert {"random", "least_confidence", "margin", "entropy", "bald", "std", "diverse"} <= set(active.STRATEGIES)
    with pytest.raises(UnknownNameError, match="Did you mean 'margin'"):
        active.get_strategy("margn")


def test_one_public_name_per_concept():
    from pathlib import Path

    for gone in ("register_strategy", "simulate_active_learning"):
        assert not hasattr(kk, gone) and not hasattr(active, gone)
    package = Path(kk.__file__).parent
    for module in ("validation.py", "analysis_plots.py", "active/strategies.py"):
        assert not (package / module).exists(), module
    assert kk.Simulation is active.Simulation


# The learner ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_pool(digits):
    x_train, x_test, y_train, y_test = digits
    return x_train[:30], y_train[:30], x_train[30:330], y_train[30:330], x_test, y_test


def test_learner_refuses_bad_settings_before_training(digit_pool):
    x0, y0, pool, _, _, _ = digit_pool
    multiclass = kk.ProblemSpec(task="multiclass", num_classes=10)
    with pytest.raises(ConfigError, match="'std' applies to regression"):
        kk.ActiveLearner(multiclass, "std", x_labeled=x0, y_labeled=y0)
    with pytest.raises(ConfigError, match="no option.*'pases'.*passes"):
        kk.ActiveLearner(multiclass, "bald", x_labeled=x0, y_labeled=y0, strategy_options={"pases": 5})
    with pytest.raises(ConfigError, match="'bald' applies to binary, multiclass"):
        kk.ActiveLearner(kk.ProblemSpec(task="regression"), "diverse", x_labeled=x0,
                         y_labeled=x0[:, 0], strategy_options={"base": "bald"})
    with pytest.raises(ConfigError, match="`callbacks` must be a list of keras.callbacks.Callback"):
        kk.ActiveLearner(multiclass, x_labeled=x0, y_labeled=y0, callbacks="stop")
    with pytest.raises(DataError, match="30 rows but `y_labeled` has 29"):
        kk.ActiveLearner(multiclass, x_labeled=x0, y_labeled=y0[:29])
    with pytest.raises(kk.KerakitError, match=r"Labels must be in \[0, 3\)"):
        kk.ActiveLearner(kk.ProblemSpec(task="multiclass", num_classes=3), x_labeled=x0, y_labeled=y0)
    learner = kk.ActiveLearner(multiclass, x_labeled=x0, y_labeled=y0)
    with pytest.raises(ConfigError, match="n=400 rows from a pool of 300"):
        learner.query(pool, 400)
    with pytest.raises(ConfigError, match="`n` must be >= 1"):
        learner.query(pool, 0)
    with pytest.raises(DataError, match="expects 64 feature"):
        learner.teach(pool[:2, :10], [0, 1])
    assert learner.members_ is None  # nothing was trained


def test_learner_queries_teaches_warm_and_from_scratch(digit_pool):
    x0, y0, pool, y_pool, x_test, y_test = digit_pool
    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    learner = kk.ActiveLearner(spec, "margin", x_labeled=x0, y_labeled=y0, units=(32,),
                               epochs=20, teach_epochs=3, seed=0)
    indices, scores = learner.query(pool, n=10)
    assert len(set(indices.tolist())) == 10 and indices.max() < len(pool)
    assert np.all(np.diff(scores) <= 0)  # most informative first
    model = learner.model_
    kernel = model.get_layer("output").get_weights()[0].copy()
    learner.teach(pool[indices], y_pool[indices])
    assert learner.n_labeled == 40
    assert learner.model_ is model  # warm start: same model, trained further
    assert not np.allclose(model.get_layer("output").get_weights()[0], kernel)
    proba = learner.predict(x_test)
    assert proba.shape == (len(x_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
    assert learner.score(x_test, y_test) > 0.3  # 40 labels, 10 classes: far above chance
    with pytest.raises(DataError, match=f"`x` has {len(x_test)} rows but `y` has {len(x_test) - 1}"):
        learner.score(x_test, y_test[:-1])
    learner.teach(pool[indices[:1]], y_pool[indices[:1]], from_scratch=True)
    assert learner.model_ is not model and learner.n_labeled == 41


def test_ensemble_learner_for_regression_queries_by_predictive_std():
    import keras

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (60, 1)).astype("float32")
    y = np.sin(3 * x[:, 0])
    spec = kk.ProblemSpec(task="regression")
    learner = kk.ActiveLearner(spec, "std", x_labeled=x[:8], y_labeled=y[:8], ensemble_size=2,
                               units=(16,), dropout=0.0, epochs=3, teach_epochs=1,
                               # one optimizer object: each member needs its own copy
                               optimizer=keras.optimizers.Adam(learning_rate=0.01))
    assert isinstance(learner.model_, list) and len(learner.model_) == 2
    indices, scores = learner.query(x[8:], n=3)
    mean, std = learner.predict(x[8:], return_std=True)
    np.testing.assert_allclose(scores, std[indices, 0], rtol=1e-4)
    assert scores[0] == pytest.approx(std.max(), rel=1e-4)
    assert mean.shape == (52, 1) and np.isfinite(learner.score(x[8:], y[8:]))
    learner.teach(x[8:9], y[8:9], from_scratch=True)
    assert learner.model_[0].optimizer is not learner.model_[1].optimizer


# Simulation -------------------------------------------------------------------------


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


def test_monte_carlo_strategies_without_dropout_are_refused_at_construction():
    # Refused when the learner is made, not at the first query after training.
    x0 = np.random.default_rng(0).normal(size=(12, 3)).astype("float32")
    multiclass = kk.ProblemSpec(task="multiclass", num_classes=3)
    regression = kk.ProblemSpec(task="regression")
    with pytest.raises(ConfigError, match="dropout=0 builds a model without dropout") as info:
        kk.ActiveLearner(multiclass, "bald", x_labeled=x0, y_labeled=np.arange(12) % 3, dropout=0)
    assert "ensemble_size=5" in str(info.value)
    with pytest.raises(ConfigError, match="'std'"):
        kk.ActiveLearner(regression, "diverse", x_labeled=x0, y_labeled=x0[:, 0], dropout=0.0)
    # Dropout, or an ensemble, makes the passes differ: both are accepted.
    kk.ActiveLearner(multiclass, "bald", x_labeled=x0, y_labeled=np.arange(12) % 3, dropout=0.3)
    kk.ActiveLearner(multiclass, "bald", x_labeled=x0, y_labeled=np.arange(12) % 3, dropout=0,
                     ensemble_size=3)
