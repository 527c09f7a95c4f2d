"""Category columns on every backend: TableInput, CategoryLookup and CrossHash."""

import keras
import numpy as np
import pytest

from kerakit.errors import ConfigError
from kerakit.layers import CategoryLookup, CrossHash, TableInput, table_input, text_in_graph

pytestmark = pytest.mark.backends


def test_text_lookup_one_hots_known_values_and_sends_the_rest_to_slot_zero():
    layer = CategoryLookup(["Oslo", "Bergen", ""])
    cells = np.array([["Bergen"], ["Paris"], [""], ["Oslo"]], dtype=object)
    codes = layer.codes(cells)
    assert codes.ravel().tolist() == [2, 0, 3, 1] and codes.dtype == np.int32
    assert layer.get_vocabulary() == ["[UNK]", "Oslo", "Bergen", ""]  # index order, as Keras lists it
    # The text itself on TensorFlow, the host's codes elsewhere: the same one-hot rows.
    if text_in_graph():
        import tensorflow as tf

        fed = tf.constant(cells.astype(str))
    else:
        fed = codes
    out = keras.ops.convert_to_numpy(layer(fed))
    np.testing.assert_array_equal(out.argmax(axis=1), [2, 0, 3, 1])
    assert out.shape == (4, 4)


def test_codes_out_of_range_count_as_unknown():
    layer = CategoryLookup(["a", "b"])
    out = keras.ops.convert_to_numpy(layer(np.array([[5], [-1], [2]], dtype="int32")))
    assert out.argmax(axis=1).tolist() == [0, 0, 2]


def test_integer_lookup_compares_the_cells_on_every_backend():
    layer = CategoryLookup([3, -1, 7], output_mode="int")
    out = keras.ops.convert_to_numpy(layer(np.array([[7], [-1], [4]])))
    assert out.ravel().tolist() == [3, 2, 0]


def test_lookup_refuses_a_repeated_value():
    with pytest.raises(ConfigError, match="must not repeat"):
        CategoryLookup(["a", "a"])


def test_cross_hash_is_deterministic_and_refuses_fewer_than_two_buckets():
    members = [np.array([[1], [1], [0]]), np.array([[2], [3], [2]])]
    out = keras.ops.convert_to_numpy(CrossHash(8)(members))
    # h = (i * 1000003 + j) mod 8, as written in the layer's docstring.
    assert out.argmax(axis=1).tolist() == [(1 * 1000003 + 2) % 8, (1 * 1000003 + 3) % 8, 2]
    for bad in (0, 1, 2.5, True):
        with pytest.raises(ConfigError, match="num_bins"):
            CrossHash(bad)


def test_table_input_takes_text_only_where_the_backend_has_strings(tmp_path):
    city = table_input("string_categorical", "city")
    assert ("string" in str(city.dtype)) == text_in_graph()
    model = keras.Model({"city": city}, CategoryLookup(["x", "y"], name="city_lookup")(city))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    layer = loaded.get_layer("city")
    assert isinstance(layer, TableInput) and layer.kind == "string_categorical"
    assert "dtype" not in layer.get_config()  # the kind decides it where the file is loaded
