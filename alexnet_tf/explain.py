"""Why the network decides: Grad-CAM (Selvaraju et al., 2017) class-activation maps.

For a class c and the feature maps A of the last conv layer, Grad-CAM weighs each channel k by
the mean over the map of d(logit_c)/d(A_k) and keeps the positive part of the weighted sum,
upsampled to the image: where evidence for c lies. The maps are computed with ``keras.ops``;
only the gradient itself is each backend's own (``tf.GradientTape``, ``jax.grad``,
``torch.autograd``), so it works on TensorFlow, JAX and PyTorch alike.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def last_conv_layer(model) -> keras.layers.Layer:
    """The layer whose output Grad-CAM explains: the activation after the last Conv2D (its ReLU,
    when the next layer is one), else the Conv2D itself."""
    names = [layer.name for layer in model.layers]
    convs = [i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise ValueError(f"model {model.name!r} has no Conv2D layer to explain")
    i = convs[-1]
    for j in range(i + 1, len(names)):
        if isinstance(model.layers[j], (keras.layers.ReLU, keras.layers.Activation)):
            return model.layers[j]
        if not isinstance(model.layers[j], keras.layers.BatchNormalization):
            break
    return model.layers[i]


def _gradient(function, x):
    """d function(x) / dx for a scalar-valued ``function``, by the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        return tape.gradient(y, x)
    if backend == "jax":
        import jax

        return jax.grad(function)(x)
    if backend == "torch":
        x = x.detach().clone().requires_grad_(True)
        function(x).backward()
        return x.grad
    raise ValueError(f"Grad-CAM needs gradients, which the {backend!r} backend does not give")


def grad_cam(model, images, class_index=None, layer=None) -> np.ndarray:
    """Grad-CAM maps, float32 (N, H, W) in [0, 1] at the images' size, for ``class_index`` (an int
    or one per image; default: each image's predicted class). ``images``: uint8 (N, H, W, 3), as
    the model takes them. ``layer``: the layer to explain (default ``last_conv_layer``). Works on
    chain models such as every network of ``alexnet_tf.model``: the layers after ``layer`` are
    applied one after another (in inference mode), up to the logits before a final softmax."""
    layer = layer or last_conv_layer(model)
    position = model.layers.index(layer)
    head = model.layers[position + 1 :]
    if head and isinstance(head[-1], keras.layers.Activation) and head[-1].get_config()["activation"] == "softmax":
        head = head[:-1]  # Grad-CAM differentiates the class score before the softmax
    features = keras.Model(model.input, layer.output)
    maps = ops.cast(features(images, training=False), "float32")
    if class_index is None:
        class_index = np.argmax(keras.ops.convert_to_numpy(model(images, training=False)), axis=-1)
    num_classes = model.output_shape[-1]
    chosen = ops.one_hot(ops.convert_to_tensor(np.broadcast_to(class_index, (len(images),))), num_classes)

    def score(a):
        for later in head:
            a = later(a, training=False)
        return ops.sum(ops.cast(a, "float32") * chosen)

    grads = _gradient(score, maps)
    weights = ops.mean(grads, axis=(1, 2), keepdims=True)  # (N, 1, 1, K)
    cam = ops.relu(ops.sum(weights * maps, axis=-1, keepdims=True))
    cam = ops.image.resize(cam, ops.shape(images)[1:3], interpolation="bilinear")[..., 0]
    top = ops.max(cam, axis=(1, 2), keepdims=True)
    return keras.ops.convert_to_numpy(ops.where(top > 0, cam / (top + 1e-12), cam)).astype("float32")


def right_and_wrong(labels, probs, per_kind=4, seed=0) -> np.ndarray:
    """Indices of up to ``per_kind`` right and ``per_kind`` wrong top-1 predictions (seeded
    choice), right ones first: the images a Grad-CAM figure shows side by side."""
    predicted = np.argmax(probs, axis=1)
    rng = np.random.default_rng(seed)
    picks = []
    for mask in (predicted == labels, predicted != labels):
        found = np.flatnonzero(mask)
        picks.append(np.sort(rng.choice(found, min(per_kind, len(found)), replace=False)))
    return np.concatenate(picks).astype(int)
