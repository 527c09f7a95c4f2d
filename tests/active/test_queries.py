"""Query strategies on models with known outputs: uncertainty measures, Monte-Carlo samples, the registry."""


import numpy as np
import pytest

import kerakit as kk
from kerakit import active
from kerakit.errors import ConfigError, UnknownNameError
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
