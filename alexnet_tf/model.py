"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012) with Local Response Normalization, in Keras 3.

Written with ``keras.layers`` and ``keras.ops`` only, so it builds and trains on the
TensorFlow, JAX and PyTorch backends and saves to ``.keras`` without Lambda layers.
"""

from __future__ import annotations

import random
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from data_prep.images import channel_stats

from .config import dropout_problem
from .registry import MODELS, VARIANTS, register_model  # noqa: F401 (register_model: here too, as before)
from .schedules import learning_rate

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@keras.saving.register_keras_serializable(package="alexnet_tf")
class LocalResponseNormalization(layers.Layer):
    """Local Response Normalization across channels, as in section 3.3 of the AlexNet paper.

        b[..., i] = a[..., i] / (k + alpha * sum_{j=i-n//2}^{i+n//2} a[..., j]**2) ** beta

    with the sum over the ``n`` neighbouring channels that exist (fewer at the edges).
    Defaults are the paper's: n=5, k=2, alpha=1e-4, beta=0.75. Channels last.

    Mapping to other libraries:

    * ``tf.nn.local_response_normalization(x, depth_radius=n // 2, bias=k, alpha=alpha, beta=beta)``
      computes exactly this (TensorFlow's ``depth_radius`` is the half-width, its ``alpha``
      multiplies the plain sum, like the paper's).
    * Caffe's LRN and ``torch.nn.LocalResponseNorm(size=n, alpha=a, beta, k)`` divide alpha by n:
      they use ``alpha = a / n``. The paper's alpha=1e-4 is ``a = 5e-4`` there; conversely a
      Caffe-style ``bias=1, alpha=2e-5`` (as some Keras ports use with tf.nn) is k=1 and the
      paper's alpha divided by 5, not the paper's setting.

    The normalisation is computed in float32 whatever the input dtype, because squared
    activations summed over the window overflow float16; the result is cast back.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if depth_radius < 0:
            raise ValueError(f"depth_radius={depth_radius} must be >= 0 (window size n = 2 * depth_radius + 1)")
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    @property
    def size(self):
        """The paper's n: the number of channels in the window."""
        return 2 * self.depth_radius + 1

    def build(self, input_shape):
        channels = input_shape[-1]
        idx = np.arange(channels)
        # Band matrix: window[..., i] = sum_j sq[..., j] * band[j, i] sums the n neighbours of i.
        # One matmul (and its matmul gradient) is several times faster on CPU than summing
        # shifted slices, and faster than TensorFlow's own fused LRN op.
        self._band = (np.abs(idx[:, None] - idx[None, :]) <= self.depth_radius).astype("float32")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        window = ops.matmul(ops.square(x), self._band)
        # (k + alpha * window) ** -beta written as exp(-beta * log(.)): same value, cheaper gradient.
        out = x * ops.exp(-self.beta * ops.log(self.bias + self.alpha * window))
        return ops.cast(out, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


# Max-pooling window by name; the stride is 2 for both. The paper's overlapping 3x3/2 pooling
# cut its top-1 error by 0.4 points against 2x2/2 (section 3.4).
POOLING = {"overlapping": 3, "non-overlapping": 2}


def preprocessing_layer(kind="standardize", mean=None, variance=None):
    """uint8 pixels -> float inside the model: "rescale" to [0, 1], "standardize" per channel
    with the training set's mean and variance (see ``channel_stats``), or "imagenet" mean/std."""
    if kind == "rescale":
        return layers.Rescaling(1 / 255, name="rescale")
    if kind == "imagenet":
        return layers.Normalization(mean=IMAGENET_MEAN, variance=np.square(IMAGENET_STD), name="normalize")
    if kind == "standardize":
        if mean is None or variance is None:
            raise ValueError(
                'preprocessing="standardize" needs the training set\'s mean and variance: '
                "pass mean, variance = alexnet_tf.model.channel_stats(x_train)"
            )
        return layers.Normalization(mean=list(mean), variance=list(variance), name="normalize")
    raise ValueError(f"unknown preprocessing {kind!r}; choose rescale, standardize or imagenet")


def alexnet_model(
    input_shape=None,
    num_classes=200,
    variant="tiny",
    lrn=True,
    dropout=0.5,
    weight_decay=5e-4,
    batch_norm=False,
    preprocessing="rescale",
    mean=None,
    variance=None,
    augmentation=None,
    lrn_params=None,
    name=None,
    pooling="overlapping",
):
    """Build AlexNet for uint8 images; the model converts and normalises them itself.

    Args:
        input_shape: (H, W, 3); defaults to the variant's input size.
        num_classes: output classes (softmax probabilities, float32 even under mixed precision).
        variant: "tiny" (64x64 Tiny ImageNet), "original" (227x227, the paper) or "mini".
        lrn: Local Response Normalization after the first two conv layers (False: plain AlexNet).
        dropout: dropout rate of the hidden dense layers (paper: 0.5).
        weight_decay: the paper's weight decay; applied as an L2 penalty of weight_decay / 2 on
            the kernels, whose gradient is the paper's ``weight_decay * w``.
        batch_norm: batch normalisation after each conv layer (not in the paper).
        preprocessing: "rescale", "standardize" (needs mean and variance) or "imagenet".
        augmentation: optional Keras layer applied to the uint8 images first (active in training only).
        lrn_params: overrides for LocalResponseNormalization (depth_radius, bias, alpha, beta).
        pooling: "overlapping" (3x3 windows, stride 2: the paper's) or "non-overlapping" (2x2,
            stride 2), the comparison of the paper's section 3.4; both halve the map.
    """
    _check_arguments(variant, dropout, pooling)
    spec = VARIANTS[variant]
    input_shape = tuple(input_shape or (spec["input_size"], spec["input_size"], 3))
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    inputs = keras.Input(input_shape, name="images")
    x = inputs
    if augmentation is not None:
        x = augmentation(x)
    x = preprocessing_layer(preprocessing, mean, variance)(x)
    for i, conv in enumerate(spec["convs"], 1):
        x = _conv_block(x, i, conv, variant, regularizer, batch_norm, lrn, lrn_params, pooling)
    x = layers.Flatten(name="flatten")(x)
    for i, width in enumerate(spec["dense"], 6):
        x = _dense_block(x, i, width, regularizer, dropout)
    x = layers.Dense(num_classes, kernel_regularizer=regularizer, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name or f"alexnet_{variant}{'' if lrn else '_no_lrn'}")


def _check_arguments(variant, dropout, pooling) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    if dropout_problem(dropout) is not None:
        raise ValueError(f"dropout={dropout} must be {dropout_problem(dropout)}")
    if pooling not in POOLING:
        raise ValueError(f"pooling={pooling!r}; choose one of {', '.join(POOLING)}")


def _conv_block(x, i, conv, variant, regularizer, batch_norm, lrn, lrn_params, pooling):
    """Conv layer ``i`` (``conv``: filters, kernel, stride, LRN after it, pooling after it), then
    batch normalisation, ReLU, LRN and max pooling where they apply."""
    filters, kernel, stride, has_lrn, has_pool = conv
    padding = "valid" if (variant == "original" and i == 1) else "same"
    # He initialisation suits the ReLU stack: SGD starts learning at once, where the paper's
    # N(0, 0.01) weights need its bias-1 trick and many epochs to get going.
    x = layers.Conv2D(
        filters,
        kernel,
        stride,
        padding=padding,
        use_bias=not batch_norm,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
        name=f"conv{i}",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"bn{i}")(x)
    x = layers.ReLU(name=f"relu{i}")(x)
    if lrn and has_lrn:
        x = LocalResponseNormalization(**(lrn_params or {}), name=f"lrn{i}")(x)
    if has_pool:
        x = layers.MaxPooling2D(
            POOLING[pooling], 2, padding="valid" if variant == "original" else "same", name=f"pool{i}"
        )(x)
    return x


def _dense_block(x, i, width, regularizer, dropout):
    """Hidden dense layer ``i``, its ReLU and its dropout."""
    x = layers.Dense(width, kernel_initializer="he_normal", kernel_regularizer=regularizer, name=f"fc{i}")(x)
    x = layers.ReLU(name=f"relu{i}")(x)
    if dropout:
        # A seed of its own (drawn from keras.utils.set_random_seed's): without one, PyTorch takes
        # dropout masks from its global generator, which a resumed run cannot restore.
        x = layers.Dropout(dropout, seed=random.randint(1, 10**9), name=f"dropout{i}")(x)
    return x


def build_alexnet(config, num_classes, mean=None, variance=None, augmentation=None) -> keras.Model:
    """The registered builder of every AlexNet variant (``alexnet_tf.registry.VARIANTS``):
    ``config.variant``'s network for a ``TrainConfig``."""
    return alexnet_model(
        (config.image_size, config.image_size, 3),
        num_classes,
        config.variant,
        lrn=config.lrn,
        dropout=config.dropout,
        weight_decay=config.weight_decay,
        batch_norm=config.batch_norm,
        preprocessing=config.preprocessing,
        mean=mean,
        variance=variance,
        augmentation=augmentation,
        pooling=config.pooling,
    )


def build_model(config, data, augmentation=None) -> keras.Model:
    """The network ``config.variant`` names in the registry for ``config`` (a ``TrainConfig``),
    normalised with the statistics of ``data``'s training images (``alexnet_tf.data.Data``), with
    ``augmentation`` (a layer) first when the model carries it; started from ``config.init_weights``
    and with its conv layers frozen where the config asks."""
    mean, variance = channel_stats(data.x_train)
    model = MODELS.lookup(config.variant)(config, data.num_classes, mean, variance, augmentation)
    if config.init_weights:
        copied = load_matching_weights(model, config.init_weights)
        print(f"Started from {config.init_weights}: weights of {copied} layers")
    if config.freeze_features:
        for layer in model.layers:
            if layer.name.startswith(("conv", "bn")):
                layer.trainable = False
    return model


def compile_model(model, config, steps_per_epoch: int) -> None:
    """Compile ``model`` for training as ``config`` says: its optimizer and learning rate
    (``alexnet_tf.schedules.learning_rate``), label smoothing, top-1 and top-5 accuracy, XLA."""
    rate = learning_rate(config, steps_per_epoch)
    # Keras keeps the average beside the weights and writes it into them when fit ends.
    ema = {"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum else {}
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(rate, **ema)
    else:
        optimizer = keras.optimizers.SGD(rate, momentum=config.momentum, **ema)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=min(5, model.output_shape[-1]), name="top5_accuracy"),
        ],
        jit_compile=config.jit_compile,
    )


def load_matching_weights(model, path) -> int:
    """Copy weights from a ``.keras`` model or a ``.weights.h5`` file into ``model`` wherever a layer
    of the same name has weights of the same shapes (e.g. all but the classifier of a network
    trained on other classes). Returns how many layers were copied."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give a .keras model or a .weights.h5 file")
    if path.name.endswith(".weights.h5"):
        before = [np.copy(w) for w in model.get_weights()]
        model.load_weights(path, skip_mismatch=True)
        return sum(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    source = {layer.name: layer for layer in keras.models.load_model(path).layers}
    copied = 0
    for layer in model.layers:
        other = source.get(layer.name)
        if other is None or not layer.weights:
            continue
        weights = other.get_weights()
        if [w.shape for w in weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(weights)
            copied += 1
    return copied


def count_macs(model) -> int:
    """Multiply-accumulates of one forward pass per image (conv and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
