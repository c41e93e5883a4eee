"""Learning-rate schedules: ``learning_rate(config, steps_per_epoch)`` is what ``train`` gives
the optimizer, Keras' own schedules where Keras has one (warm-up then cosine, step decay),
one-cycle where it has none; the seeds' step decay as an epoch function and the paper's
plateau rule as a callback (``schedule_callbacks``, with early stopping)."""

from __future__ import annotations

import math

import keras
from keras import ops


def lr_schedule(epoch, lr=None, base_lr=0.01, drops=(75, 100), factor=0.5):
    """Step decay for ``keras.callbacks.LearningRateScheduler``: ``base_lr`` times ``factor`` once
    for every drop point the (0-based) epoch has reached.

    With the defaults: 0.01 until epoch 74, 0.005 from epoch 75, 0.0025 from epoch 100. (The
    seed this follows tested ``epoch > 75`` before ``epoch > 100``, so its last drop never
    happened.) ``lr``, the optimizer's current rate that Keras passes in, is not used: the rate
    depends on the epoch alone, so a resumed run gets the same rate. Other settings:
    ``functools.partial(lr_schedule, base_lr=0.02, drops=(30, 60), factor=0.1)``.
    """
    if epoch < 0:
        raise ValueError(f"epoch={epoch} must be >= 0")
    return base_lr * factor ** sum(epoch >= d for d in sorted(drops))


def plateau_callback(factor=0.1, patience=5, min_lr=1e-5, monitor="val_loss"):
    """The paper's rule, "divide the learning rate by 10 when the validation error stops
    improving", as a ``keras.callbacks.ReduceLROnPlateau``."""
    return keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, factor=factor, patience=patience, min_lr=min_lr, verbose=1
    )


def learning_rate(config, steps_per_epoch: int):
    """The learning rate ``train`` uses for ``config`` (a ``TrainConfig``) at ``steps_per_epoch``
    steps an epoch: a number, or a schedule of the optimizer's step to plot or to call."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "cosine":
        warmup = min(config.warmup_epochs * steps_per_epoch, total - 1)
        return keras.optimizers.schedules.CosineDecay(
            0.0, total - warmup, alpha=0.0, warmup_target=config.learning_rate, warmup_steps=warmup
        )
    if config.schedule == "onecycle":
        return OneCycle(config.learning_rate, total)
    if config.schedule == "step":
        # lr_schedule's epochs as optimizer steps: the first step of epoch d already has the lower rate.
        drops = sorted(set(config.lr_drops))
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [d * steps_per_epoch - 1 for d in drops],
            [lr_schedule(0, base_lr=config.learning_rate, drops=config.lr_drops)]
            + [lr_schedule(d, base_lr=config.learning_rate, drops=config.lr_drops) for d in drops],
        )
    return config.learning_rate  # "constant", and "plateau", whose callback lowers it


def schedule_callbacks(config) -> list:
    """The callbacks of ``config``'s schedule: the plateau rule's (the other schedules are the
    optimizer's own, ``learning_rate``) and early stopping, which ends the run's schedule early."""
    out = []
    if config.schedule == "plateau":
        out.append(plateau_callback())
    if config.early_stopping_patience:
        out.append(
            keras.callbacks.EarlyStopping(
                "val_loss", patience=config.early_stopping_patience, restore_best_weights=False
            )
        )
    return out


@keras.saving.register_keras_serializable(package="alexnet_tf")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak_lr`` over ``warmup_steps``, then cosine decay to ``final_lr``
    at ``total_steps`` (held there afterwards). Training now uses Keras' ``CosineDecay`` with
    ``warmup_target`` (the same rates, tested); this stays so that models saved with it load."""

    def __init__(self, peak_lr, total_steps, warmup_steps=0, final_lr=0.0):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) < total_steps ({total_steps})")
        self.peak_lr, self.total_steps = float(peak_lr), int(total_steps)
        self.warmup_steps, self.final_lr = int(warmup_steps), float(final_lr)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak_lr * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0.0, 1.0)
        cosine = self.final_lr + 0.5 * (self.peak_lr - self.final_lr) * (1 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_lr": self.final_lr,
        }


@keras.saving.register_keras_serializable(package="alexnet_tf")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle (Smith, 2018) as in PyTorch's OneCycleLR with cosine annealing: from
    ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of the steps, then
    down to ``max_lr / div_factor / final_div_factor``."""

    def __init__(self, max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
        if not 0 < pct_start < 1:
            raise ValueError(f"pct_start={pct_start} must be in (0, 1)")
        self.max_lr, self.total_steps, self.pct_start = float(max_lr), int(total_steps), float(pct_start)
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        start = self.max_lr / self.div_factor
        end = start / self.final_div_factor
        up_steps = self.pct_start * self.total_steps
        up = ops.clip(step / up_steps, 0.0, 1.0)
        down = ops.clip((step - up_steps) / (self.total_steps - up_steps), 0.0, 1.0)

        def anneal(a, b, t):
            return b + 0.5 * (a - b) * (1 + ops.cos(math.pi * t))

        return ops.where(step < up_steps, anneal(start, self.max_lr, up), anneal(self.max_lr, end, down))

    def get_config(self):
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }
