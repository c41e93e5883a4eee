"""Data augmentation: Keras' classic ``ImageDataGenerator`` and a fast batched path, driven by
one ``AugmentConfig`` so that switching between them is one argument.

Units that trip users up (all parameters here use the ImageDataGenerator's units):

* ``rotation_range=20`` in ImageDataGenerator is degrees (a random angle in [-20, 20]);
  ``keras.layers.RandomRotation(factor)`` takes a fraction of a full turn, so the same range
  is ``RandomRotation(20 / 360)`` (see ``degrees_to_turns``).
* ``shear_range=0.2`` is an angle in **degrees**, not a fraction: 0.2 degrees is barely visible.
  The seeds wrote 0.2 meaning 20%; 0.2 is kept as the default to match them, knowingly.
* ``zoom_range=0.2`` means a random scale in [0.8, 1.2], drawn separately for width and height.
* ``width_shift_range=0.2`` is a fraction of the width (up to 12.8 pixels of a 64-pixel image).

Beyond ImageDataGenerator's transforms, both paths offer random-resized crops (``crop_area``),
random erasing (``erasing``, Zhong et al. 2017) and the AlexNet paper's PCA colour noise
(``pca_lighting``, section 4.1: noise along the principal components of the training pixels).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import layers, ops

from .config import FILL_MODES, AugmentConfig, FillMode  # noqa: F401 (here too, as before)
from .registry import AUGMENTATIONS, FEEDS, augmentation_feed, register_augmentation  # noqa: F401

# Random erasing's rectangles (Zhong et al. 2017): area fraction and log aspect ratio.
ERASE_AREA = (0.02, 0.25)
ERASE_LOG_ASPECT = (math.log(0.3), math.log(1 / 0.3))
CROP_LOG_ASPECT = (math.log(3 / 4), math.log(4 / 3))


def pixel_pca(images, chunk=4096) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the covariance of the RGB values of
    uint8 ``images`` scaled to [0, 1]: the principal components of PCA lighting."""
    images = np.asarray(images)
    total, outer, count = np.zeros(3), np.zeros((3, 3)), 0
    for start in range(0, len(images), chunk):
        pixels = images[start : start + chunk].reshape(-1, 3).astype("float64") / 255.0
        total += pixels.sum(0)
        outer += pixels.T @ pixels
        count += len(pixels)
    mean = total / count
    values, vectors = np.linalg.eigh(outer / count - np.outer(mean, mean))
    order = np.argsort(values)[::-1]
    return values[order].astype("float32"), vectors[:, order].astype("float32")


def degrees_to_turns(degrees: float) -> float:
    """ImageDataGenerator's rotation_range (degrees) -> keras.layers.RandomRotation's factor (turns)."""
    return degrees / 360.0


def turns_to_degrees(turns: float) -> float:
    return turns * 360.0


# --- the classic path ---------------------------------------------------------------------


def image_data_generator(config: AugmentConfig = AugmentConfig(), seed=None, pca=None):
    """A Keras ``ImageDataGenerator`` with ``config``'s transforms (use ``.flow`` or ``.flow_from_directory``);
    ``pca``: ``pixel_pca`` of the training images, needed when ``config.pca_lighting`` is set."""
    # Keras 3 has no keras.preprocessing.image.ImageDataGenerator (that import raises ImportError);
    # TensorFlow still ships the numpy-based original as tf.keras.preprocessing.image.
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    crop = _per_image_transforms(config, seed, pca)
    return ImageDataGenerator(
        rotation_range=config.rotation_degrees,
        width_shift_range=config.width_shift,
        height_shift_range=config.height_shift,
        shear_range=config.shear_degrees,
        zoom_range=config.zoom,
        horizontal_flip=config.horizontal_flip,
        fill_mode=config.fill_mode,
        preprocessing_function=crop,
    )


def _per_image_transforms(config: AugmentConfig, seed, pca=None):
    """ImageDataGenerator's ``preprocessing_function`` for the transforms it lacks (pad-and-crop,
    random-resized crop, erasing, PCA lighting), drawn as the fast path draws them; None if none is on."""
    if not (config.crop_padding or config.crop_area < 1 or config.erasing or config.pca_lighting):
        return None
    if config.pca_lighting and pca is None:
        raise ValueError("pca_lighting needs the training images' pixel_pca(x_train) (the pca argument)")
    rng = np.random.default_rng(seed)
    mode = {"nearest": "edge", "constant": "constant", "reflect": "reflect", "wrap": "wrap"}[config.fill_mode]
    padding = config.crop_padding

    def transform(image):
        h, w = image.shape[:2]
        if padding:
            padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)), mode=mode)
            top, left = rng.integers(0, 2 * padding + 1, 2)
            image = padded[top : top + h, left : left + w]
        if config.crop_area < 1:
            area, aspect = rng.uniform(config.crop_area, 1.0), math.exp(rng.uniform(*CROP_LOG_ASPECT))
            cw, ch = min(1.0, math.sqrt(area * aspect)), min(1.0, math.sqrt(area / aspect))
            x0, y0 = rng.uniform(0, 1 - cw) * w, rng.uniform(0, 1 - ch) * h
            from PIL import Image

            crop = Image.fromarray(np.clip(image, 0, 255).astype("uint8"))
            image = np.asarray(
                crop.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw * w, y0 + ch * h)), dtype="float32"
            )
        image = np.array(image, dtype="float32")
        if config.pca_lighting:
            values, vectors = pca
            image = np.clip(image + 255.0 * (vectors @ (rng.normal(0, config.pca_lighting, 3) * values)), 0, 255)
        if config.erasing and rng.uniform() < config.erasing:
            area, aspect = rng.uniform(*ERASE_AREA) * h * w, math.exp(rng.uniform(*ERASE_LOG_ASPECT))
            eh, ew = min(h, round(math.sqrt(area * aspect))), min(w, round(math.sqrt(area / aspect)))
            top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
            image[top : top + eh, left : left + ew] = rng.uniform(0, 255, (eh, ew, image.shape[2]))
        return image

    return transform


# --- the fast path ------------------------------------------------------------------------


def _source_index(coord, size, fill_mode):
    """Integer source coordinates -> indices inside [0, size) for each fill mode, and a mask
    that is 0 where "constant" fill should show."""
    if fill_mode == "wrap":
        return ops.mod(coord, size), None
    if fill_mode == "reflect":  # d c b a | a b c d | d c b a, as scipy and ImageDataGenerator
        period = ops.mod(coord, 2 * size)
        return ops.where(period >= size, 2 * size - 1 - period, period), None
    inside = ops.logical_and(coord >= 0, coord <= size - 1)
    index = ops.clip(coord, 0, size - 1)
    return index, (ops.cast(inside, "float32") if fill_mode == "constant" else None)


def affine_warp(images, transform, fill_mode="nearest"):
    """Bilinear affine resampling of a batch: output (x, y) reads the input at
    (t0 x + t1 y + t2, t3 x + t4 y + t5), ``transform`` being (N, 6).

    Written as four gathers so that XLA fuses it: on a 2-core CPU this runs several times
    faster than TensorFlow's ImageProjectiveTransform kernel, the op behind
    ``keras.ops.image.affine_transform``.
    """
    shape = ops.shape(images)
    n, h, w, channels = shape[0], shape[1], shape[2], shape[3]
    ys, xs = ops.meshgrid(ops.arange(h, dtype="float32"), ops.arange(w, dtype="float32"), indexing="ij")
    xs, ys = ops.reshape(xs, (1, -1)), ops.reshape(ys, (1, -1))
    sx = transform[:, 0:1] * xs + transform[:, 1:2] * ys + transform[:, 2:3]
    sy = transform[:, 3:4] * xs + transform[:, 4:5] * ys + transform[:, 5:6]
    x0, y0 = ops.floor(sx), ops.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    flat = ops.reshape(ops.cast(images, "float32"), (-1, channels))
    base = ops.reshape(ops.arange(n, dtype="int32") * (h * w), (-1, 1))

    def pixel(yy, xx):
        ix, mask_x = _source_index(xx, w, fill_mode)
        iy, mask_y = _source_index(yy, h, fill_mode)
        values = ops.take(flat, base + iy * w + ix, axis=0)
        if mask_x is not None:
            values = values * (mask_x * mask_y)[..., None]
        return values

    out = (
        pixel(y0, x0) * ((1 - fx) * (1 - fy))
        + pixel(y0, x0 + 1) * (fx * (1 - fy))
        + pixel(y0 + 1, x0) * ((1 - fx) * fy)
        + pixel(y0 + 1, x0 + 1) * (fx * fy)
    )
    return ops.reshape(out, (n, h, w, channels))


def shift_and_flip(images, shift_x, shift_y, flip, fill_mode="nearest"):
    """What ``affine_warp`` computes when the transform is only a whole-pixel shift and a
    horizontal flip (pad-and-crop and mirroring): output (x, y) reads the input at
    (x or w - 1 - x, then + ``shift_x``, y + ``shift_y``). The sample points are then whole
    pixels, so the bilinear weights are 0 and 1: one gather, in the images' own dtype, gives
    the same pixels as the warp's four gathers and their blend, at a fraction of the cost."""
    shape = ops.shape(images)
    n, h, w, channels = shape[0], shape[1], shape[2], shape[3]
    xs = ops.arange(w, dtype="int32")[None, :]
    xs = ops.where(flip[:, None] < 0, w - 1 - xs, xs) + ops.cast(shift_x, "int32")[:, None]
    ys = ops.arange(h, dtype="int32")[None, :] + ops.cast(shift_y, "int32")[:, None]
    ix, mask_x = _source_index(xs, w, fill_mode)
    iy, mask_y = _source_index(ys, h, fill_mode)
    base = ops.reshape(ops.arange(n, dtype="int32") * (h * w), (-1, 1, 1))
    rows = ops.reshape(base + iy[:, :, None] * w + ix[:, None, :], (n, -1))
    out = ops.cast(ops.take(ops.reshape(images, (-1, channels)), rows, axis=0), "float32")
    if mask_x is not None:
        out = out * ops.reshape(mask_y[:, :, None] * mask_x[:, None, :], (n, -1, 1))
    return ops.reshape(out, (n, h, w, channels))


_compiled = {}


def _compiled_function(function):
    """``function``, XLA-compiled on TensorFlow (7x faster there for the warp, also inside
    tf.data); JAX and PyTorch compile or run the keras.ops as they are."""
    if keras.backend.backend() != "tensorflow":
        return function
    if function.__name__ not in _compiled:
        import tensorflow as tf

        _compiled[function.__name__] = tf.function(function, jit_compile=True, reduce_retracing=True)
    return _compiled[function.__name__]


@keras.saving.register_keras_serializable(package="alexnet_tf")
class RandomAffine(layers.Layer):
    """All of ``AugmentConfig``'s transforms as one random affine warp per image, on whole batches.

    Flip, rotation, shear, zoom, shift and pad-and-crop (an integer shift of up to
    ``crop_padding`` pixels) are composed into one matrix per image and applied with a
    single bilinear resampling (``affine_warp``): one pass over the batch instead of one per
    transform, and no blur from resampling again and again. The
    parameters are drawn as ImageDataGenerator draws them. A random-resized crop (``crop_area``)
    joins the same matrix; PCA lighting and random erasing follow the warp. Active only when
    ``training``. Takes uint8 or float images; returns float32 pixel values in the input's range.
    ``pca_values`` and ``pca_vectors``: ``pixel_pca`` of the training images, for ``pca_lighting``.
    """

    def __init__(
        self,
        rotation_degrees=20.0,
        width_shift=0.2,
        height_shift=0.2,
        shear_degrees=0.2,
        zoom=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
        crop_padding=0,
        crop_area=1.0,
        erasing=0.0,
        pca_lighting=0.0,
        pca_values=None,
        pca_vectors=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config = AugmentConfig(
            rotation_degrees=rotation_degrees,
            width_shift=width_shift,
            height_shift=height_shift,
            shear_degrees=shear_degrees,
            zoom=zoom,
            horizontal_flip=horizontal_flip,
            fill_mode=fill_mode,
            crop_padding=crop_padding,
            crop_area=crop_area,
            erasing=erasing,
            pca_lighting=pca_lighting,
        )
        if pca_lighting and (pca_values is None or pca_vectors is None):
            raise ValueError("pca_lighting needs pca_values and pca_vectors: alexnet_tf.augment.pixel_pca(x_train)")
        self.pca_values = None if pca_values is None else [float(v) for v in np.ravel(pca_values)]
        self.pca_vectors = None if pca_vectors is None else np.asarray(pca_vectors, "float32").tolist()
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, n, low, high):
        return keras.random.uniform((n,), low, high, seed=self.seed_generator)

    def call(self, images, training=True):
        top = 255.0 if keras.backend.standardize_dtype(images.dtype) == "uint8" else None
        images_in, images = images, ops.cast(images, "float32")
        if not training:
            return images
        c = self.config
        shape = ops.shape(images)
        n, h, w = shape[0], shape[1], shape[2]
        hf, wf = ops.cast(h, "float32"), ops.cast(w, "float32")
        theta = self._uniform(n, -1.0, 1.0) * (c.rotation_degrees * math.pi / 180)
        shear = self._uniform(n, -1.0, 1.0) * (c.shear_degrees * math.pi / 180)
        zx = self._uniform(n, 1 - c.zoom, 1 + c.zoom)
        zy = self._uniform(n, 1 - c.zoom, 1 + c.zoom)
        tx = self._uniform(n, -1.0, 1.0) * (c.width_shift * wf)
        ty = self._uniform(n, -1.0, 1.0) * (c.height_shift * hf)
        if c.crop_padding:
            k = 2 * c.crop_padding + 1
            tx = tx + ops.floor(self._uniform(n, 0.0, float(k))) - c.crop_padding
            ty = ty + ops.floor(self._uniform(n, 0.0, float(k))) - c.crop_padding
        flip = ops.where(self._uniform(n, 0.0, 1.0) < 0.5, -1.0, 1.0) if c.horizontal_flip else ops.ones((n,))
        if c.crop_area < 1:  # a random part of the image, stretched to the full size: zoom in and move
            area = self._uniform(n, c.crop_area, 1.0)
            aspect = ops.exp(self._uniform(n, *CROP_LOG_ASPECT))
            cw, ch = ops.minimum(ops.sqrt(area * aspect), 1.0), ops.minimum(ops.sqrt(area / aspect), 1.0)
            zx, zy = zx * cw, zy * ch
            tx = tx + self._uniform(n, -1.0, 1.0) * (1 - cw) * (wf / 2)
            ty = ty + self._uniform(n, -1.0, 1.0) * (1 - ch) * (hf / 2)
        # Output pixel (x, y) samples the input at M @ (x - cx, y - cy) + (cx + tx, cy + ty), where
        # M = rotation @ shear @ zoom @ flip (the output-to-input map, as ImageDataGenerator builds it).
        if not (c.rotation_degrees or c.shear_degrees or c.zoom or c.width_shift or c.height_shift or c.crop_area < 1):
            # Crops and flips only (the same draws as below): whole-pixel moves, one gather.
            out = _compiled_function(shift_and_flip)(images_in, tx, ty, flip, c.fill_mode)
            return self._light_and_erase(out, n, h, w)
        cos, sin = ops.cos(theta), ops.sin(theta)
        shear_sin, shear_cos = -ops.sin(shear), ops.cos(shear)
        m00 = cos * zx * flip
        m01 = (cos * shear_sin - sin * shear_cos) * zy
        m10 = sin * zx * flip
        m11 = (sin * shear_sin + cos * shear_cos) * zy
        cx, cy = (wf - 1) / 2, (hf - 1) / 2
        a2 = cx + tx - m00 * cx - m01 * cy
        b2 = cy + ty - m10 * cx - m11 * cy
        transform = ops.stack([m00, m01, a2, m10, m11, b2], axis=1)
        out = _compiled_function(affine_warp)(images, transform, c.fill_mode)
        out = out if top is None else ops.clip(out, 0.0, top)  # rounding may step past 255
        return self._light_and_erase(out, n, h, w)

    def _light_and_erase(self, images, n, h, w):
        """PCA lighting, then random erasing, on float pixel values in 0..255 (each off at 0)."""
        c = self.config
        if c.pca_lighting:
            alpha = keras.random.normal((n, 3), stddev=c.pca_lighting, seed=self.seed_generator)
            shift = ops.matmul(alpha * ops.convert_to_tensor(self.pca_values), ops.transpose(self.pca_vectors))
            images = ops.clip(images + 255.0 * shift[:, None, None, :], 0.0, 255.0)
        if c.erasing:
            hf, wf = ops.cast(h, "float32"), ops.cast(w, "float32")
            area = self._uniform(n, *ERASE_AREA) * hf * wf
            aspect = ops.exp(self._uniform(n, *ERASE_LOG_ASPECT))
            eh, ew = ops.minimum(ops.sqrt(area * aspect), hf), ops.minimum(ops.sqrt(area / aspect), wf)
            y0, x0 = self._uniform(n, 0.0, 1.0) * (hf - eh), self._uniform(n, 0.0, 1.0) * (wf - ew)
            erase = self._uniform(n, 0.0, 1.0) < c.erasing
            ys = ops.arange(h, dtype="float32")[None, :, None]
            xs = ops.arange(w, dtype="float32")[None, None, :]
            inside = (
                (ys >= y0[:, None, None])
                & (ys < (y0 + eh)[:, None, None])
                & (xs >= x0[:, None, None])
                & (xs < (x0 + ew)[:, None, None])
                & erase[:, None, None]
            )
            noise = keras.random.uniform(ops.shape(images), 0.0, 255.0, seed=self.seed_generator)
            images = ops.where(inside[..., None], noise, images)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        pca = {"pca_values": self.pca_values, "pca_vectors": self.pca_vectors}
        return {**super().get_config(), **asdict(self.config), **pca, "seed": self.seed}


# --- the built-in augmentations (registered by name in alexnet_tf.registry) -----------------


def no_augmentation(augment, seed=None, pca=None) -> None:
    """The "none" augmentation: no layer."""


def fast_augmenter(config: AugmentConfig = AugmentConfig(), seed=None, pca=None) -> RandomAffine:
    """The fast path: a Keras layer to map over ``tf.data`` batches (CPU) or to put first in the model (GPU).
    ``pca``: ``pixel_pca`` of the training images, needed when ``config.pca_lighting`` is set."""
    values, vectors = (None, None) if pca is None else pca
    return RandomAffine(**asdict(config), pca_values=values, pca_vectors=vectors, seed=seed, name="augment")


def batch_mixing(kind, num_classes, seed=None):
    """MixUp or CutMix (the Keras layers) on a batch: ``(images, int labels) -> (images, soft labels)``.
    Train with categorical (not sparse) cross-entropy when using it. The layers compute in float32
    whatever the global precision policy: under mixed_bfloat16 their own arithmetic mixes bfloat16
    inputs with float32 random draws and fails."""
    if kind == "mixup":
        layer = layers.MixUp(seed=seed, dtype="float32")
    elif kind == "cutmix":
        layer = layers.CutMix(seed=seed, dtype="float32")
    else:
        raise ValueError(f"unknown mixing {kind!r}; choose mixup or cutmix")

    def mix(images, labels):
        out = layer({"images": ops.cast(images, "float32"), "labels": ops.one_hot(labels, num_classes)}, training=True)
        return out["images"], out["labels"]

    return mix


@dataclass(frozen=True)
class TrainingAugmentation:
    """How a run's augmentation feeds training (``training_augmentation``); None where unused.

    ``layer``: a batched Keras layer on uint8 images, which the model carries where ``in_model``
    and the ``tf.data`` batches get otherwise. ``generator``: an ImageDataGenerator whose ``flow``
    makes the batches (an entry registered with feed "generator", such as classic). ``mix``:
    MixUp or CutMix on each batch (``batch_mixing``)."""

    layer: object = None
    in_model: bool = False
    generator: object = None
    mix: object = None


def training_augmentation(config, data, on_gpu: bool) -> TrainingAugmentation:
    """The augmentation ``config`` (a ``TrainConfig``) names in the registry, for ``data``
    (``alexnet_tf.data.Data``): PCA lighting takes its components from the training images. On a
    TensorFlow CPU ``tf.data`` augments beside the training step; elsewhere the model carries it."""
    feed = augmentation_feed(config.augmentation)
    if feed == "generator" and config.mixing:
        raise ValueError("mixing (MixUp/CutMix) works with augmentation='fast' or 'none'")
    if feed == "generator" and keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"augmentation={config.augmentation!r} is ImageDataGenerator, which needs TensorFlow; on the "
            f"{keras.backend.backend()} backend use augmentation='fast' (the same transforms)"
        )
    # An entry's factory takes (augment settings, seed), and pca only where PCA lighting is on.
    pca = {"pca": pixel_pca(data.x_train)} if config.augment.pca_lighting else {}
    made = AUGMENTATIONS.lookup(config.augmentation)(config.augment, config.seed, **pca)
    if feed == "generator":
        return TrainingAugmentation(generator=made)
    mix = batch_mixing(config.mixing, data.num_classes, config.seed) if config.mixing else None
    in_model = made is not None and (on_gpu or keras.backend.backend() != "tensorflow")
    return TrainingAugmentation(layer=made, in_model=in_model, mix=mix)
