"""kdl.gan.GAN: the same GAN code trains on this backend with ``fit`` (NumPy arrays and a
PyDataset), each step moves exactly the network it should along its own loss's gradient, a seed
fixes the run, bad arguments are refused, and both networks save as ordinary models."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from kdl import autodiff
from kdl.models import GAN

LATENT = 4
DATA_MEAN, DATA_STD = 3.0, 0.5
REAL = np.random.default_rng(0).normal(DATA_MEAN, DATA_STD, (2048, 1)).astype("float32")


def numpy(x) -> np.ndarray:
    return ops.convert_to_numpy(x)


def networks(latent_dim: int = LATENT, d_units: int = 1) -> tuple[keras.Model, keras.Model]:
    d = keras.Sequential([keras.Input((1,)), layers.Dense(16, "relu"), layers.Dense(d_units)],
                         name="discriminator")
    g = keras.Sequential([keras.Input((latent_dim,)), layers.Dense(16, "relu"), layers.Dense(1)],
                         name="generator")
    return d, g


def compiled_gan(seed: int = 1, d_lr: float = 2e-3, g_lr: float = 2e-3,
                 optimizer: type = keras.optimizers.Adam) -> GAN:
    d, g = networks()
    gan = GAN(d, g, latent_dim=LATENT, seed=seed)
    gan.compile(d_optimizer=optimizer(d_lr), g_optimizer=optimizer(g_lr))
    return gan


def weights(model: keras.Model) -> list[np.ndarray]:
    return [numpy(w) for w in model.weights]


def changed(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    return any(not np.array_equal(b, a) for b, a in zip(before, after))


class RealBatches(keras.utils.PyDataset):
    """The real samples in batches, as a PyDataset yields them (x only, no targets)."""

    def __init__(self, data: np.ndarray, batch_size: int) -> None:
        super().__init__()
        self.data, self.batch_size = data, batch_size

    def __len__(self) -> int:
        return len(self.data) // self.batch_size

    def __getitem__(self, i: int) -> np.ndarray:
        return self.data[i * self.batch_size:(i + 1) * self.batch_size]


@pytest.mark.parametrize("source", ["numpy", "pydataset"])
def test_generated_mean_moves_from_zero_to_the_data_mean(source):
    gan = compiled_gan()
    start = float(numpy(gan.generate(2000)).mean())
    assert abs(start) < 1.0, start  # an untrained generator outputs values near 0
    data = REAL if source == "numpy" else RealBatches(REAL, 64)
    kwargs = {"batch_size": 64} if source == "numpy" else {}
    history = gan.fit(data, epochs=10, verbose=0, **kwargs)
    assert sorted(history.history) == ["d_loss", "g_loss"]
    assert len(history.history["d_loss"]) == 10
    assert np.all(np.isfinite(history.history["d_loss"] + history.history["g_loss"]))
    end = float(numpy(gan.generate(2000)).mean())
    assert abs(end - DATA_MEAN) < 0.75, (start, end)


def test_each_step_moves_only_its_network_along_its_own_loss_gradient():
    """One batch with SGD: D moves by -lr * grad of its loss at the initial weights; G moves by
    -lr * grad of the non-saturating loss through the *updated* D; nothing else moves."""
    lr, n, seed = 0.5, 32, 7
    gan = compiled_gan(seed=seed, d_lr=lr, g_lr=lr, optimizer=keras.optimizers.SGD)
    d, g = gan.discriminator, gan.generator
    d0, g0 = weights(d), weights(g)
    real = REAL[:n]
    noise = keras.random.SeedGenerator(seed)  # replays the GAN's two noise draws
    z_d = keras.random.normal((n, LATENT), seed=noise)
    z_g = keras.random.normal((n, LATENT), seed=noise)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    def d_loss(*d_weights):
        fake, _ = g.stateless_call(g0, [], z_d)
        real_out, _ = d.stateless_call(list(d_weights), [], ops.convert_to_tensor(real))
        fake_out, _ = d.stateless_call(list(d_weights), [], fake)
        return bce(ops.ones_like(real_out), real_out) + bce(ops.zeros_like(fake_out), fake_out)

    d_grads = autodiff.grad(d_loss, argnums=tuple(range(len(d0))))(*d0)
    d1 = [w - lr * numpy(gr) for w, gr in zip(d0, d_grads)]

    def g_loss(*g_weights):
        fake, _ = g.stateless_call(list(g_weights), [], z_g)
        fake_out, _ = d.stateless_call(d1, [], fake)
        return bce(ops.ones_like(fake_out), fake_out)

    g_grads = autodiff.grad(g_loss, argnums=tuple(range(len(g0))))(*g0)
    g1 = [w - lr * numpy(gr) for w, gr in zip(g0, g_grads)]
    assert max(np.abs(numpy(gr)).max() for gr in d_grads) > 1e-3  # the check can see a step
    assert max(np.abs(numpy(gr)).max() for gr in g_grads) > 1e-3

    gan.fit(real, batch_size=n, epochs=1, shuffle=False, verbose=0)
    for expected, actual in zip(d1 + g1, weights(d) + weights(g)):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("frozen", ["discriminator", "generator"])
def test_a_network_with_a_zero_learning_rate_keeps_its_weights(frozen):
    gan = compiled_gan(d_lr=0.0 if frozen == "discriminator" else 0.01,
                       g_lr=0.0 if frozen == "generator" else 0.01,
                       optimizer=keras.optimizers.SGD)
    d0, g0 = weights(gan.discriminator), weights(gan.generator)
    gan.fit(REAL[:64], batch_size=64, epochs=1, verbose=0)
    d_moved = changed(d0, weights(gan.discriminator))
    g_moved = changed(g0, weights(gan.generator))
    assert (d_moved, g_moved) == ((False, True) if frozen == "discriminator" else (True, False))


def test_same_seed_gives_same_weights_and_another_seed_does_not():
    def run(seed: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(0)  # the same initial weights every time
        gan = compiled_gan(seed=seed)
        gan.fit(REAL[:256], batch_size=64, epochs=2, shuffle=False, verbose=0)
        return weights(gan.discriminator) + weights(gan.generator)

    first, again, other = run(3), run(3), run(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert changed(first, other)


def test_bad_arguments_raise_a_value_error_naming_the_argument_and_value():
    d, g = networks(latent_dim=4)
    with pytest.raises(ValueError, match=r"latent_dim.*latent_dim=3"):
        GAN(d, g, latent_dim=3)
    with pytest.raises(ValueError, match=r"latent_dim=0"):
        GAN(d, g, latent_dim=0)
    wide_d, _ = networks(d_units=2)
    with pytest.raises(ValueError, match=r"discriminator.*one output unit.*\(None, 2\)"):
        GAN(wide_d, g, latent_dim=4)
    two_d_d = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    with pytest.raises(ValueError, match=r"generator's output shape \(None, 1\)"):
        GAN(two_d_d, g, latent_dim=4)
    with pytest.raises(ValueError, match=r"generator.*built"):
        GAN(d, keras.Sequential([layers.Dense(1)]), latent_dim=4)
    gan = GAN(d, g, latent_dim=4)
    with pytest.raises(ValueError, match=r"`d_optimizer`.*d_optimizer=None"):
        gan.compile(g_optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match=r"`g_optimizer`.*g_optimizer='adam'"):
        gan.compile(d_optimizer=keras.optimizers.Adam(), g_optimizer="adam")
    shared = keras.optimizers.Adam()
    with pytest.raises(ValueError, match=r"two different optimizer instances"):
        gan.compile(d_optimizer=shared, g_optimizer=shared)


def test_generator_and_discriminator_save_and_reload_as_ordinary_models(tmp_path):
    gan = compiled_gan()
    gan.fit(REAL[:128], batch_size=64, epochs=1, verbose=0)
    z = np.random.default_rng(1).normal(size=(5, LATENT)).astype("float32")
    for net, x in ((gan.generator, z), (gan.discriminator, REAL[:5])):
        path = tmp_path / f"{net.name}.keras"
        net.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(numpy(reloaded(x)), numpy(net(x)), rtol=1e-6, atol=1e-6)


def test_gan_config_round_trips_to_an_equivalent_gan():
    gan = compiled_gan(seed=5)
    clone = GAN.from_config(gan.get_config())
    assert (clone.latent_dim, clone.seed) == (LATENT, 5)
    assert clone.generator.count_params() == gan.generator.count_params()
    assert clone.discriminator.output_shape == (None, 1)
