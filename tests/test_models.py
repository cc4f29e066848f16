import keras
import numpy as np
import pytest

from trainer import models


@pytest.mark.parametrize("name, params", [("lstm1", 693_301), ("lstm2", 710_257)])
def test_notebook_parameter_counts_at_20k_vocabulary(name, params):
    assert models.BUILDERS[name](20000).count_params() == params


@pytest.mark.parametrize("name", sorted(models.BUILDERS))
def test_models_take_any_length_without_masking(name):
    model = models.compiled(models.BUILDERS[name](50), learning_rate=1e-3)
    embedding = model.get_layer("embedding")
    assert embedding.mask_zero is False  # front padding + mask would break cuDNN
    for length in (400, 17):
        probabilities = model.predict(np.random.default_rng(0).integers(0, 50, size=(3, length)), verbose=0)
        assert probabilities.shape == (3, 1) and np.all((probabilities > 0) & (probabilities < 1))
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss.__class__ is keras.losses.BinaryCrossentropy


def test_mixed_bfloat16_keeps_the_output_layer_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.build_lstm1(30)
        assert model.get_layer("lstm").compute_dtype == "bfloat16"
        output = model(np.ones((2, 7), dtype="int64"))
        assert keras.backend.standardize_dtype(output.dtype) == "float32" and np.isfinite(np.asarray(output)).all()
    finally:
        keras.config.set_dtype_policy(previous)
