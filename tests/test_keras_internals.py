"""What alexnet_tf.keras_internals takes from Keras beyond its public API still holds."""

import keras
import numpy as np

from alexnet_tf.keras_internals import random_stream_variables


def dropout_model():
    inputs = keras.Input((16,))
    outputs = keras.layers.Dropout(0.5, seed=3)(inputs)
    return keras.Model(inputs, outputs)


def test_random_streams_are_found_by_their_variable_name():
    model = dropout_model()
    streams = random_stream_variables(model)
    assert len(streams) == 1
    assert keras.ops.convert_to_numpy(streams[0].value).shape == (2,)  # (seed, counter)


def test_a_draw_advances_the_counter_and_a_restored_state_redraws_the_same_numbers():
    model = dropout_model()
    (state,) = random_stream_variables(model)
    x = np.ones((4, 16), "float32")
    start = keras.ops.convert_to_numpy(state.value).copy()
    first = keras.ops.convert_to_numpy(model(x, training=True))
    after = keras.ops.convert_to_numpy(state.value)
    assert after[0] == start[0] and after[1] == start[1] + 1
    state.assign(start)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x, training=True)), first)
    state.assign(start + np.array([0, 2**20], dtype=start.dtype))  # another epoch's offset: other numbers
    assert not np.array_equal(keras.ops.convert_to_numpy(model(x, training=True)), first)
