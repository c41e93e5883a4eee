"""One config object for a training run, with named presets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .augment import AugmentConfig
from .model import VARIANTS

SCHEDULES = ("step", "plateau", "cosine", "onecycle", "constant")


@dataclass
class TrainConfig:
    # data: a Tiny ImageNet folder or zip, any <root>/<split>/<class>/ folder, or None for the synthetic set
    data: str | None = None
    classes: int | list | None = None  # None: all; N: alphabetically first N; or a list of wnids
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
    distribute: str = "none"  # "none", "mirrored" (all GPUs of one machine) or "multiworker" (TF_CONFIG)
    # output
    runs_dir: str = "runs"
    name: str | None = None  # run folder name; None derives it from the config

    def __post_init__(self):
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs={self.epochs} must be >= 1")
        if self.batch_size < 1:
            problems.append(f"batch_size={self.batch_size} must be >= 1")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate={self.learning_rate} must be > 0")
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
        if self.distribute not in ("none", "mirrored", "multiworker"):
            problems.append(f"distribute={self.distribute!r}; choose none, mirrored or multiworker")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing={self.label_smoothing} must be in [0, 1)")
        if problems:
            raise ValueError("bad training config: " + "; ".join(problems))

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        data = "synthetic" if self.data is None else str(self.data).rstrip("/").split("/")[-1].removesuffix(".zip")
        classes = "all" if self.classes is None else (self.classes if isinstance(self.classes, int) else len(self.classes))
        images = "" if self.images_per_class is None else f"-{self.images_per_class}img"
        return f"{self.variant}{'' if self.lrn else '-nolrn'}-{data}-{classes}c{images}-{self.epochs}e-seed{self.seed}"

    def resolved(self) -> "TrainConfig":
        """The same config with absolute data and runs paths, as a run folder records it, so that
        ``data/x`` from the repository's root and ``../data/x`` from ``notebooks/`` are one run."""
        return self.replace(data=None if self.data is None else str(Path(self.data).resolve()),
                            runs_dir=str(Path(self.runs_dir).resolve()))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls(**json.loads(text))

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


PRESETS = {
    # The same code path as a real run, small enough for CI and the notebooks' quick mode.
    "quick": dict(epochs=3, images_per_class=60, batch_size=32, optimizer="adam", learning_rate=1e-3),
    # The main job on the synthetic set: a few minutes on a 2-core CPU.
    "default": dict(epochs=12, optimizer="adam", learning_rate=1e-3),
    # Tiny-10: the ten alphabetically first classes of Tiny ImageNet.
    # Tiny-10 on a 2-core CPU within 20 minutes of training (about 19 s an epoch).
    "tiny10": dict(classes=10, epochs=65, optimizer="adam", learning_rate=1e-3, label_smoothing=0.1, tta=True,
                   augment=AugmentConfig(crop_padding=4)),
    # All 200 classes, sized for a GPU.
    "tiny200": dict(epochs=30, batch_size=256, learning_rate=0.04),
}


def preset(preset_name="default", **overrides) -> TrainConfig:
    if preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r}; choose one of {sorted(PRESETS)}")
    return TrainConfig(**{**PRESETS[preset_name], **overrides})
