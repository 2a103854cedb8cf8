"""A generative adversarial network that trains with ``fit`` on TensorFlow, JAX and PyTorch.

Keras 3 has no backend-agnostic custom training loop, and a GAN needs one: each batch makes one
discriminator step and one generator step, each with its own loss and its own optimiser. This
module is, with ``kdl.autodiff``, one of the two places in ``kdl`` where backend-specific code may
live. Everything else (noise, losses, argument checks, loss tracking) is written once with
``keras.ops``; only the three ``_train_step_*`` methods differ, one short section per backend,
following Keras's own trainers (``keras/src/backend/{jax,tensorflow,torch}/trainer.py``):

- **JAX** is functional: ``fit`` hands ``train_step`` the values of every variable
  (``state``), the step computes gradients with ``jax.value_and_grad`` of ``stateless_call``,
  updates with ``optimizer.stateless_apply`` and returns the new values. The noise generator's
  seed is a variable too, so it is threaded through the step like the weights.
- **TensorFlow** records each forward pass on a ``tf.GradientTape``.
- **PyTorch** calls ``backward()`` on the loss and reads each weight's ``.grad``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

__all__ = ["GAN"]


def _positions(all_variables: Sequence[keras.Variable],
               wanted: Sequence[keras.Variable]) -> list[int]:
    """Indices of ``wanted`` in ``all_variables`` (by identity): how JAX's flat state is split."""
    index = {id(v): i for i, v in enumerate(all_variables)}
    return [index[id(v)] for v in wanted]


class _OptimizerPair:
    """Presents the two optimisers to ``fit`` as one: JAX's trainer threads ``optimizer.variables``
    through every step, so both optimisers' slots must be in that list (discriminator's first)."""

    def __init__(self, d_optimizer: keras.optimizers.Optimizer,
                 g_optimizer: keras.optimizers.Optimizer) -> None:
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    @property
    def variables(self) -> list[keras.Variable]:
        return list(self.d_optimizer.variables) + list(self.g_optimizer.variables)

    @property
    def built(self) -> bool:
        return self.d_optimizer.built and self.g_optimizer.built


@keras.saving.register_keras_serializable(package="kdl")
class GAN(keras.Model):
    """Generative adversarial network: a discriminator and a generator trained by ``fit``.

    Each batch of real samples makes two updates. The **discriminator** step draws latent noise
    ``z ~ N(0, I)``, generates ``G(z)`` and minimises
    ``loss_fn(1, D(x_real)) + loss_fn(0, D(G(z)))``. The **generator** step draws fresh noise and
    minimises the non-saturating loss ``loss_fn(1, D(G(z)))``. With the default
    ``BinaryCrossentropy(from_logits=True)`` the discriminator must output one logit (no sigmoid);
    ``loss_fn=keras.losses.MeanSquaredError()`` gives a least-squares GAN. Only the
    discriminator's weights change in its step and only the generator's in its step.
    Regularisation losses added by the networks' layers are not part of either loss.

    The noise comes from a ``keras.random.SeedGenerator`` owned by the model, so two runs with the
    same ``seed``, the same initial weights and the same data order on the same backend give the
    same weights. Random streams differ between backends. The generator and discriminator stay
    ordinary Keras models: save them with ``generator.save("g.keras")`` and load them anywhere.

    Args:
        discriminator: a built ``keras.Model`` from samples to one output unit, shape
            ``(batch, 1)``.
        generator: a built ``keras.Model`` from ``(batch, latent_dim)`` to samples of the shape the
            discriminator takes.
        latent_dim: size of the latent noise vector; must equal the generator's input size.
        seed: seed of the noise generator (an int, or None for a random one).

    Call arguments:
        inputs: latent vectors ``(batch, latent_dim)``; ``gan(z)`` returns ``generator(z)``.

    Example:
    >>> import keras, numpy as np
    >>> from keras import layers
    >>> d = keras.Sequential([keras.Input((1,)), layers.Dense(8, "relu"), layers.Dense(1)])
    >>> g = keras.Sequential([keras.Input((2,)), layers.Dense(8, "relu"), layers.Dense(1)])
    >>> gan = GAN(d, g, latent_dim=2, seed=0)
    >>> gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    >>> history = gan.fit(np.random.normal(3.0, 1.0, (64, 1)), batch_size=32, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['d_loss', 'g_loss']
    >>> tuple(gan.generate(5).shape)
    (5, 1)
    """

    def __init__(self, discriminator: keras.Model, generator: keras.Model, latent_dim: int, *,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"`latent_dim` must be a positive integer, "
                             f"got latent_dim={latent_dim!r}")
        for name, net in (("discriminator", discriminator), ("generator", generator)):
            if not isinstance(net, keras.Model) or not net.built:
                raise ValueError(f"`{name}` must be a built keras.Model (give it a keras.Input), "
                                 f"got {name}={net!r}")
        g_in, g_out = tuple(generator.input_shape), tuple(generator.output_shape)
        if g_in[-1] != latent_dim or len(g_in) != 2:
            raise ValueError(f"`latent_dim` must equal the generator's input size: the generator "
                             f"takes inputs of shape {g_in}, got latent_dim={latent_dim}")
        d_in, d_out = tuple(discriminator.input_shape), tuple(discriminator.output_shape)
        if d_out[1:] != (1,):
            raise ValueError(f"`discriminator` must have exactly one output unit (one logit per "
                             f"sample), got discriminator output shape {d_out}")
        if g_out[1:] != d_in[1:]:
            raise ValueError(f"the generator's output shape {g_out} does not match the "
                             f"discriminator's input shape {d_in}")
        self.discriminator, self.generator = discriminator, generator
        self.latent_dim, self.seed = latent_dim, seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True

    def compile(self, d_optimizer: keras.optimizers.Optimizer | None = None,
                g_optimizer: keras.optimizers.Optimizer | None = None,
                loss_fn: Callable | None = None, **kwargs: Any) -> None:
        """Configure training: one optimiser per network and the adversarial loss.

        Args:
            d_optimizer: optimiser of the discriminator (a ``keras.optimizers.Optimizer``).
            g_optimizer: optimiser of the generator, a different instance.
            loss_fn: ``loss_fn(targets, outputs)`` returning a scalar; default
                ``keras.losses.BinaryCrossentropy(from_logits=True)``.
            **kwargs: passed on to ``keras.Model.compile`` (``jit_compile``, ``run_eagerly``,
                ``steps_per_execution``); ``optimizer``, ``loss`` and ``metrics`` are not taken.
        """
        for name, opt in (("d_optimizer", d_optimizer), ("g_optimizer", g_optimizer)):
            if not isinstance(opt, keras.optimizers.Optimizer):
                raise ValueError(f"GAN.compile needs `{name}`, a keras.optimizers.Optimizer "
                                 f"instance, got {name}={opt!r}")
        if d_optimizer is g_optimizer:
            raise ValueError("`d_optimizer` and `g_optimizer` must be two different optimizer "
                             "instances (each keeps slots for its own network's weights)")
        if loss_fn is None:
            loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        if not callable(loss_fn):
            raise ValueError(f"`loss_fn` must be callable as loss_fn(targets, outputs), "
                             f"got loss_fn={loss_fn!r}")
        unknown = {"optimizer", "loss", "metrics", "loss_weights", "weighted_metrics"} & set(kwargs)
        if unknown:
            raise ValueError(f"GAN.compile takes d_optimizer, g_optimizer and loss_fn, "
                             f"not {sorted(unknown)}")
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        self.optimizer = _OptimizerPair(d_optimizer, g_optimizer)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.d_loss_tracker, self.g_loss_tracker]

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.generator(inputs, training=training)

    def generate(self, num_samples: int) -> Any:
        """Return ``num_samples`` generated samples (a backend tensor), from fresh noise."""
        return self.generator(self._latent(num_samples), training=False)

    # Backend-agnostic pieces of the step.
    def _latent(self, batch_size: Any) -> Any:
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def _discriminator_loss(self, real_outputs: Any, fake_outputs: Any) -> Any:
        return (self.loss_fn(ops.ones_like(real_outputs), real_outputs)
                + self.loss_fn(ops.zeros_like(fake_outputs), fake_outputs))

    def _generator_loss(self, fake_outputs: Any) -> Any:
        return self.loss_fn(ops.ones_like(fake_outputs), fake_outputs)  # non-saturating

    def _real_batch(self, data: Any) -> Any:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return ops.cast(x, self.generator.compute_dtype)

    def _logs(self, d_loss: Any, g_loss: Any) -> dict[str, Any]:
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    def train_step(self, *args: Any) -> Any:
        """One discriminator step then one generator step (``fit`` calls this per batch)."""
        backend = keras.backend.backend()
        if backend == "jax":
            return self._train_step_jax(*args)  # (state, data) -> (logs, state)
        if backend == "tensorflow":
            return self._train_step_tensorflow(*args)
        if backend == "torch":
            return self._train_step_torch(*args)
        raise NotImplementedError(f"GAN training is not implemented for backend {backend!r}")

    # ---- TensorFlow: record each forward pass on a GradientTape. ----
    def _train_step_tensorflow(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf

        d, g = self.discriminator, self.generator
        real = self._real_batch(data)
        z_d, z_g = self._latent(ops.shape(real)[0]), self._latent(ops.shape(real)[0])
        with tf.GradientTape() as tape:
            fake = g(z_d, training=True)
            d_loss = self._discriminator_loss(d(real, training=True), d(fake, training=True))
        grads = tape.gradient(d_loss, d.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, d.trainable_weights))
        with tf.GradientTape() as tape:
            g_loss = self._generator_loss(d(g(z_g, training=True), training=True))
        grads = tape.gradient(g_loss, g.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, g.trainable_weights))
        return self._logs(d_loss, g_loss)

    # ---- PyTorch: backward() fills each weight's .grad; zero them before each step. ----
    def _train_step_torch(self, data: Any) -> dict[str, Any]:
        import torch

        d, g = self.discriminator, self.generator
        real = self._real_batch(data)
        z_d, z_g = self._latent(ops.shape(real)[0]), self._latent(ops.shape(real)[0])
        self.zero_grad()
        fake = ops.stop_gradient(g(z_d, training=True))
        d_loss = self._discriminator_loss(d(real, training=True), d(fake, training=True))
        d_loss.backward()
        grads = [v.value.grad for v in d.trainable_weights]
        with torch.no_grad():
            self.d_optimizer.apply(grads, d.trainable_weights)
        self.zero_grad()
        g_loss = self._generator_loss(d(g(z_g, training=True), training=True))
        g_loss.backward()
        grads = [v.value.grad for v in g.trainable_weights]
        with torch.no_grad():
            self.g_optimizer.apply(grads, g.trainable_weights)
        return self._logs(d_loss, g_loss)

    # ---- JAX: pure functions of the variables' values; return the new values. ----
    def _train_step_jax(self, state: tuple, data: Any) -> tuple[dict[str, Any], tuple]:
        import jax

        trainable, non_trainable, optimizer_values, metric_values = state
        d, g = self.discriminator, self.generator
        all_t, all_nt = self.trainable_variables, self.non_trainable_variables
        trainable, non_trainable = list(trainable), list(non_trainable)
        d_t = _positions(all_t, d.trainable_variables)
        g_t = _positions(all_t, g.trainable_variables)
        d_nt = _positions(all_nt, d.non_trainable_variables)
        g_nt = _positions(all_nt, g.non_trainable_variables)
        n_d = len(self.d_optimizer.variables)
        d_opt, g_opt = optimizer_values[:n_d], optimizer_values[n_d:]
        real = self._real_batch(data)

        # The seed generator's state is a variable: draw both noise batches statelessly.
        seed_var = self.seed_generator.state
        seed_pos = _positions(all_nt, [seed_var])[0]
        with keras.StatelessScope(state_mapping=[(seed_var, non_trainable[seed_pos])]) as scope:
            z_d, z_g = self._latent(real.shape[0]), self._latent(real.shape[0])
        non_trainable[seed_pos] = scope.get_current_value(seed_var)

        def d_loss_fn(d_values, d_state, g_values, g_state):
            fake, g_state = g.stateless_call(g_values, g_state, z_d, training=True)
            real_out, d_state = d.stateless_call(d_values, d_state, real, training=True)
            fake_out, d_state = d.stateless_call(d_values, d_state, fake, training=True)
            return self._discriminator_loss(real_out, fake_out), (d_state, g_state)

        def g_loss_fn(g_values, g_state, d_values, d_state):
            fake, g_state = g.stateless_call(g_values, g_state, z_g, training=True)
            fake_out, d_state = d.stateless_call(d_values, d_state, fake, training=True)
            return self._generator_loss(fake_out), (d_state, g_state)

        def pick(values, positions):
            return [values[i] for i in positions]

        (d_loss, (d_state, g_state)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            pick(trainable, d_t), pick(non_trainable, d_nt),
            pick(trainable, g_t), pick(non_trainable, g_nt))
        d_values, d_opt = self.d_optimizer.stateless_apply(d_opt, grads, pick(trainable, d_t))
        (g_loss, (d_state, g_state)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            pick(trainable, g_t), g_state, d_values, d_state)
        g_values, g_opt = self.g_optimizer.stateless_apply(g_opt, grads, pick(trainable, g_t))

        for positions, values, target in ((d_t, d_values, trainable), (g_t, g_values, trainable),
                                          (d_nt, d_state, non_trainable),
                                          (g_nt, g_state, non_trainable)):
            for i, value in zip(positions, values):
                target[i] = value
        metric_vars = self.metrics_variables
        with keras.StatelessScope(state_mapping=list(zip(metric_vars, metric_values))) as scope:
            logs = self._logs(d_loss, g_loss)
        metric_values = [scope.get_current_value(v) for v in metric_vars]
        return logs, (trainable, non_trainable, list(d_opt) + list(g_opt), metric_values)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            discriminator=keras.saving.serialize_keras_object(self.discriminator),
            generator=keras.saving.serialize_keras_object(self.generator),
            latent_dim=self.latent_dim, seed=self.seed)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GAN:
        config = dict(config)
        for key in ("discriminator", "generator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
