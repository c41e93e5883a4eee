"""One config object for a training run, with named presets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .augment import AugmentConfig
from .distribute import CHOICES as DISTRIBUTE_CHOICES
from .hardware import PRECISIONS
from .model import VARIANTS

SCHEDULES = ("step", "plateau", "cosine", "onecycle", "constant")
PREPROCESSINGS = ("standardize", "rescale", "imagenet")
# What a run folder's config.json holds beside the settings (alexnet_tf.run_folder).
RECORD_KEYS = ("data_fingerprint",)


@dataclass
class TrainConfig:
    # data: a Tiny ImageNet folder or zip, any <root>/<split>/<class>/ folder, or None for the synthetic set
    data: str | None = None
    # None: all; N: the alphabetically first N; "random:N": N chosen with the seed; or a list of wnids
    classes: int | str | list | None = None
    images_per_class: int | None = None  # training images per class (None: all)
    val_split: str = "val"
    image_size: int = 64
    # model
    variant: str = "tiny"
    lrn: bool = True
    dropout: float = 0.5
    weight_decay: float = 5e-4
    batch_norm: bool = False
    preprocessing: str = "standardize"
    # optimisation (the paper: SGD, momentum 0.9, weight decay 5e-4, batch 128)
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    schedule: str = "onecycle"
    lr_drops: list = field(default_factory=lambda: [20, 25])  # epochs, for schedule="step"
    warmup_epochs: int = 2  # for schedule="cosine"
    label_smoothing: float = 0.0
    # augmentation: "fast" (batched Keras layer), "classic" (ImageDataGenerator) or "none"
    augmentation: str = "fast"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    mixing: str | None = None  # "mixup" or "cutmix"
    tta: bool = False  # evaluate on the image and its mirror, averaged
    early_stopping_patience: int = 0  # 0: off
    # transfer learning: start from a .keras or .weights.h5 file (layers matched by name and shape)
    init_weights: str | None = None
    freeze_features: bool = False  # keep the conv layers fixed (train the dense layers only)
    # reproducibility and hardware
    seed: int = 0
    deterministic: bool = False  # TensorFlow op determinism (slower)
    # "auto": mixed_bfloat16 on GPUs >= 8.0 and CPUs with native bfloat16, mixed_float16 on older
    # GPUs (T4), float32 elsewhere (see alexnet_tf.hardware.choose_precision)
    precision: str = "auto"
    jit_compile: bool | None = None  # None: TensorFlow's XLA on a GPU only; JAX always compiles, PyTorch never
    # "none"; "mirrored": every GPU of one machine (TensorFlow); "data-parallel": every device of every
    # process, keras.distribution on JAX (see alexnet_tf.distribute). batch_size is the global batch.
    distribute: str = "none"
    # output
    runs_dir: str = "runs"
    name: str | None = None  # run folder name; None derives it from the config

    def __post_init__(self):
        if isinstance(self.augment, dict):
            known = [f.name for f in dataclasses.fields(AugmentConfig)]
            unknown = sorted(set(self.augment) - set(known))
            if unknown:
                raise ValueError(f"augment has unknown setting(s) {unknown}; known: {known}")
            try:
                self.augment = AugmentConfig(**self.augment)
            except TypeError:  # a comparison on a value of the wrong type
                raise ValueError(
                    f"augment={self.augment}: each setting must be a number, or true/false for "
                    f"horizontal_flip and a name for fill_mode"
                ) from None
        problems = _type_problems(self)
        if problems:  # comparisons below would fail with a TypeError on a wrong type
            raise ValueError("bad training config: " + "; ".join(problems))
        problems += _range_problems(self)
        if self.variant not in VARIANTS:
            problems.append(f"variant={self.variant!r}; choose one of {sorted(VARIANTS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule={self.schedule!r}; choose one of {SCHEDULES}")
        if self.optimizer not in ("sgd", "adam"):
            problems.append(f"optimizer={self.optimizer!r}; choose sgd or adam")
        if self.augmentation not in ("fast", "classic", "none"):
            problems.append(f"augmentation={self.augmentation!r}; choose fast, classic or none")
        if self.mixing not in (None, "mixup", "cutmix"):
            problems.append(f"mixing={self.mixing!r}; choose mixup, cutmix or None")
        if self.distribute == "multiworker":  # Keras 3's fit does not take MultiWorkerMirroredStrategy
            problems.append(
                "distribute='multiworker' is not supported: Keras 3 cannot fit under TensorFlow's "
                "MultiWorkerMirroredStrategy; several machines train with data-parallel on JAX"
            )
        elif self.distribute not in DISTRIBUTE_CHOICES:
            problems.append(f"distribute={self.distribute!r}; choose one of {', '.join(DISTRIBUTE_CHOICES)}")
        if isinstance(self.classes, str) and not re.fullmatch(r"random:[1-9][0-9]*", self.classes):
            problems.append(f"classes={self.classes!r}; give N, 'first:N', 'random:N' or a list of class names")
        if self.precision not in PRECISIONS:
            problems.append(f"precision={self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.preprocessing not in PREPROCESSINGS:
            problems.append(f"preprocessing={self.preprocessing!r}; choose one of {', '.join(PREPROCESSINGS)}")
        if problems:
            raise ValueError("bad training config: " + "; ".join(problems))

    @property
    def run_name(self) -> str:
        """``name``, or a readable summary plus a short hash of every setting that shapes the run,
        so that two configs never share a folder by accident (and the same config always does)."""
        if self.name:
            return self.name
        data = "synthetic" if self.data is None else str(self.data).rstrip("/").split("/")[-1].removesuffix(".zip")
        if self.classes is None:
            classes = "all"
        elif isinstance(self.classes, (int, str)):
            classes = str(self.classes).replace(":", "")
        else:
            classes = len(self.classes)
        images = "" if self.images_per_class is None else f"-{self.images_per_class}img"
        return (
            f"{self.variant}{'' if self.lrn else '-nolrn'}-{data}-{classes}c{images}-{self.epochs}e-"
            f"seed{self.seed}-{self.fingerprint()}"
        )

    def fingerprint(self) -> str:
        """6 hex digits of the settings that change what is trained (not where it is written)."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("runs_dir", "name", "data")}
        settings["data"] = None if self.data is None else Path(self.data).name
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:6]

    def differences(self, other: TrainConfig) -> list[str]:
        """``field: this -> other`` for each field where the two configs differ."""
        a, b = asdict(self), asdict(other)
        return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k]]

    def resolved(self) -> TrainConfig:
        """The same config with absolute data and runs paths, as a run folder records it, so that
        ``data/x`` from the repository's root and ``../data/x`` from ``notebooks/`` are one run."""
        return self.replace(
            data=None if self.data is None else str(Path(self.data).resolve()),
            runs_dir=str(Path(self.runs_dir).resolve()),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source="config.json") -> TrainConfig:
        """Parse a run's config.json; a hand-edited or older file gets an error naming ``source`` and the key."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source} is not valid JSON ({err}); restore it or start a new run") from None
        if not isinstance(values, dict):
            raise ValueError(f"{source} should hold a JSON object of settings; restore it or start a new run")  # noqa: TRY004 (a bad file, as the other errors of from_json)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k not in RECORD_KEYS}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown setting(s) {unknown} (written by another version?); remove them "
                f"or start a new run. Known settings: {sorted(known)}"
            )
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _range_problems(c) -> list[str]:
    """Numeric settings outside their range, each named with its option, before anything is decoded."""

    def bad(name, rule):
        return f"{name}={getattr(c, name)!r} (--{name.replace('_', '-')}) must be {rule}"

    finite = math.isfinite
    problems = []
    if c.epochs < 1:
        problems.append(bad("epochs", ">= 1"))
    if c.batch_size < 1:
        problems.append(bad("batch_size", ">= 1"))
    if not (finite(c.learning_rate) and c.learning_rate > 0):
        problems.append(bad("learning_rate", "a finite number > 0"))
    if not (finite(c.momentum) and 0 <= c.momentum < 1):
        problems.append(bad("momentum", "in [0, 1)"))
    if not (finite(c.weight_decay) and c.weight_decay >= 0):
        problems.append(bad("weight_decay", "a finite number >= 0"))
    if not (finite(c.dropout) and 0 <= c.dropout < 1):
        problems.append(bad("dropout", "in [0, 1)"))
    if not (finite(c.label_smoothing) and 0 <= c.label_smoothing < 1):
        problems.append(bad("label_smoothing", "in [0, 1)"))
    smallest = VARIANTS.get(c.variant, {}).get("min_size", 8)
    if c.image_size < smallest:
        problems.append(bad("image_size", f">= {smallest} for variant {c.variant!r}"))
    if c.warmup_epochs < 0:
        problems.append(bad("warmup_epochs", ">= 0"))
    elif c.schedule == "cosine" and c.warmup_epochs >= c.epochs:
        problems.append(bad("warmup_epochs", f"fewer than epochs={c.epochs}, so that the cosine decay has epochs"))
    if any(e < 1 for e in c.lr_drops):
        problems.append(bad("lr_drops", "epochs >= 1"))
    if c.early_stopping_patience < 0:
        problems.append(bad("early_stopping_patience", ">= 0 (0: off)"))
    if c.images_per_class is not None and c.images_per_class < 1:
        problems.append(bad("images_per_class", ">= 1 (or none for all)"))
    if c.seed < 0:
        problems.append(bad("seed", ">= 0"))
    if c.val_split == "train":
        problems.append(
            "val_split='train' (--val-split) would choose best.keras and score the run on its own "
            "training images; validate on 'val' or another held-out split"
        )
    return problems


def _type_problems(config) -> list[str]:
    """Fields whose value does not have the declared type (a hand-edited config.json, a typo'd option)."""
    hints = typing.get_type_hints(type(config))
    problems = []
    for f in dataclasses.fields(config):
        value, hint = getattr(config, f.name), hints[f.name]
        declared = tuple(typing.get_origin(t) or t for t in typing.get_args(hint) or (hint,))
        allowed = declared + ((int,) if float in declared else ())  # 1 is a fine learning rate
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in declared):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in declared)
            problems.append(f"{f.name}={value!r} must be {names}")
    return problems


PRESETS = {
    # The same code path as a real run, small enough for CI and the notebooks' quick mode.
    "quick": {"epochs": 3, "images_per_class": 60, "batch_size": 32, "optimizer": "adam", "learning_rate": 1e-3},
    # The main job on the synthetic set: a few minutes on a 2-core CPU.
    "default": {"epochs": 12, "optimizer": "adam", "learning_rate": 1e-3},
    # Tiny-10: the ten alphabetically first classes of Tiny ImageNet, 400 training images a class
    # (the protocol: all of the shared copy's, a seeded 400 of the official zip's 500).
    # Tiny-10 on a 2-core CPU within 20 minutes of training (about 19 s an epoch).
    "tiny10": {
        "classes": 10,
        "images_per_class": 400,
        "epochs": 65,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "label_smoothing": 0.1,
        "tta": True,
        "augment": AugmentConfig(crop_padding=4),
    },
    # All 200 classes, 400 training images a class, in 40 epochs: batch norm, SGD at 0.1 with a
    # one-epoch warm-up then cosine decay, label smoothing, reflect-padded crops and flips only,
    # flip averaging at evaluation. Chosen by the proxies of benchmarks/RESULTS.md; 12 epochs of it
    # reached 42.8% top-1 on a 2-core CPU.
    "tiny200": {
        "images_per_class": 400,
        "epochs": 40,
        "batch_norm": True,
        "dropout": 0.3,
        "optimizer": "sgd",
        "learning_rate": 0.1,
        "momentum": 0.9,
        "schedule": "cosine",
        "warmup_epochs": 1,
        "label_smoothing": 0.1,
        "tta": True,
        "augment": AugmentConfig(
            rotation_degrees=0,
            width_shift=0,
            height_shift=0,
            shear_degrees=0,
            zoom=0,
            fill_mode="reflect",
            crop_padding=4,
        ),
    },
}


def preset(preset_name="default", **overrides) -> TrainConfig:
    if preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r}; choose one of {sorted(PRESETS)}")
    return TrainConfig(**{**PRESETS[preset_name], **overrides})
