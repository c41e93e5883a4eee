"""What the project relies on in Keras that is not its public API, in one place. Each has a test
(tests/test_keras_internals.py) that fails if a Keras release changes it underneath."""

from __future__ import annotations


def random_stream_variables(model) -> list:
    """The state variables of the model's random streams (``keras.random.SeedGenerator``: dropout,
    augmentation layers). Keras names them ``.../seed_generator_state``; each holds (seed, counter),
    and every draw adds 1 to the counter. Keras does not save them with the weights."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]
