"""Plots of a run: curves, errors, per-class accuracy, confusion matrix and confused pairs, predictions,
filters."""

from __future__ import annotations

from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np

from data_prep import fsutil


def _save(fig, path):
    if path is not None:
        fsutil.save_figure(fig, path, dpi=110, bbox_inches="tight")
    return fig


def plot_history(history, path=None):
    """Training and validation accuracy and loss per epoch (``history``: a DataFrame or dict of lists)."""
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation")):
        acc.plot(epochs, history[key], label=label)
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        loss.plot(epochs, history[key], label=label)
    acc.set(xlabel="epoch", ylabel="top-1 accuracy", title="Accuracy")
    loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    acc.legend()
    loss.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_errors(history, path=None):
    """Validation top-1 and top-5 error per epoch."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, 1 - np.asarray(history["val_accuracy"]), label="top-1 error")
    ax.plot(epochs, 1 - np.asarray(history["val_top5_accuracy"]), label="top-5 error")
    ax.set(xlabel="epoch", ylabel="validation error", ylim=(0, 1), title="Validation error")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_per_class_accuracy(report, path=None, top=40):
    """Bar chart of per-class accuracy (the ``top`` worst and best when there are many classes)."""
    rows = report[report["class"] != "macro avg"].sort_values("accuracy", kind="stable")
    title = "Per-class accuracy"
    if len(rows) > top:
        title = f"Per-class accuracy: the {top // 2} worst and {top // 2} best of {len(rows)} classes"
        rows = rows.iloc[list(range(top // 2)) + list(range(len(rows) - top // 2, len(rows)))]
    fig, ax = plt.subplots(figsize=(6, 0.22 * len(rows) + 1))
    ax.barh([f"{n[:32]} ({c})" for n, c in zip(rows["name"], rows["class"])], rows["accuracy"], color="tab:blue")
    ax.set(xlabel="accuracy", xlim=(0, 1), title=title)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(confusion, names, path=None):
    fig, ax = plt.subplots(figsize=(min(12, 2 + 0.5 * len(names)),) * 2)
    ax.imshow(confusion, cmap="Blues")
    if len(names) <= 30:
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        for i in range(len(names)):
            for j in range(len(names)):
                if confusion[i, j]:
                    ax.text(
                        j,
                        i,
                        confusion[i, j],
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if confusion[i, j] > confusion.max() / 2 else "black",
                    )
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    fig.tight_layout()
    return _save(fig, path)


def plot_confused_pairs(pairs, path=None):
    """Bar chart of the most-confused pairs (``evaluate.confused_pairs``): share of the true class's
    images given to the other class, labelled "true -> predicted"."""
    labels = [f"{t[:24]} -> {p[:24]}" for t, p in zip(pairs["true"], pairs["predicted"])]
    fig, ax = plt.subplots(figsize=(6, 0.22 * len(pairs) + 1))
    ax.barh(labels, pairs["share"], color="tab:red")
    ax.invert_yaxis()
    ax.set(xlabel="share of the true class's images", title="Most-confused pairs (true -> predicted)")
    fig.tight_layout()
    return _save(fig, path)


def plot_predictions(images, labels, probs, names, path=None, count=16, seed=0):
    """A grid of images with predicted vs true label: green when right, red when wrong."""
    pick = np.random.default_rng(seed).choice(len(images), min(count, len(images)), replace=False)
    cols = 4
    rows = int(np.ceil(len(pick) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.2, rows * 2.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, pick):
        guess = int(np.argmax(probs[i]))
        ax.imshow(images[i])
        ax.set_title(
            f"{names[guess]}\n(true: {names[labels[i]]})", fontsize=7, color="green" if guess == labels[i] else "red"
        )
    fig.tight_layout()
    return _save(fig, path)


def plot_conv1_filters(model, path=None):
    """The first conv layer's filters as a grid of small RGB images (None for a model without one)."""
    first = next((layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)), None)
    if first is None or first.kernel.shape[2] != 3:
        return None
    kernel = np.asarray(first.kernel)  # (k, k, 3, filters)
    kernel = (kernel - kernel.min()) / (kernel.max() - kernel.min() + 1e-12)
    size, n = kernel.shape[0], kernel.shape[-1]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    # One image of all the filters on a white grid: one axes draws in a tenth of the time of one
    # axes a filter, and every training draws it.
    step = size + 1
    mosaic = np.ones((rows * step - 1, cols * step - 1, 3), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        mosaic[r * step : r * step + size, c * step : c * step + size] = kernel[..., i]
    fig, ax = plt.subplots(figsize=(cols * 0.6, rows * 0.6))
    ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(f"{first.name} filters", fontsize=9)
    return _save(fig, path)


def evaluation_figures(figures, model, history, report, confusion, pairs, names, images, labels, probs, split):
    """Every figure of an evaluation of ``split`` into the folder ``figures``: the curves of
    ``history`` (where there is one), per-class accuracy, the confusion matrix and the most
    confused ``pairs``, sample predictions and the first layer's filters."""
    figures = Path(figures)
    if history is not None and len(history):
        plot_history(history, figures / "history.png")
        plot_errors(history, figures / "errors.png")
    plot_per_class_accuracy(report, figures / f"per_class_{split}.png")
    plot_confusion(confusion, names, figures / f"confusion_{split}.png")
    plot_confused_pairs(pairs, figures / f"confused_pairs_{split}.png")
    plot_predictions(images, labels, probs, names, figures / f"predictions_{split}.png")
    plot_conv1_filters(model, figures / "conv1_filters.png")
    plt.close("all")


def plot_samples(images, labels, names, per_class=6, classes=8, path=None, seed=0):
    """Random training images, one row per class, labelled with the class's name."""
    rng = np.random.default_rng(seed)
    shown = sorted(set(np.asarray(labels).tolist()))[:classes]
    fig, axes = plt.subplots(len(shown), per_class, figsize=(per_class * 1.2, len(shown) * 1.25), squeeze=False)
    for row, label in enumerate(shown):
        members = np.flatnonzero(labels == label)
        for ax, i in zip(axes[row], rng.choice(members, min(per_class, len(members)), replace=False)):
            ax.imshow(images[i])
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(names[label][:18], fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return _save(fig, path)


def plot_schedule(learning_rates, path=None):
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(learning_rates) + 1), learning_rates)
    ax.set(xlabel="epoch", ylabel="learning rate", title="Learning-rate schedule")
    fig.tight_layout()
    return _save(fig, path)


def plot_experiment(table, columns, path=None, title="Validation top-1 accuracy"):
    """One bar per run of an experiment table, labelled by the values of ``columns``."""
    labels = [", ".join(f"{c}={row[c]}" for c in columns) for _, row in table.iterrows()]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(table) + 1))
    ax.barh(labels, table["top1_accuracy"], color="tab:blue")
    ax.invert_yaxis()
    ax.set(xlabel="top-1 accuracy", xlim=(0, 1), title=title)
    fig.tight_layout()
    return _save(fig, path)


def plot_grad_cam(images, maps, labels, probs, names, path=None, columns=4):
    """Each image beside its Grad-CAM map laid over it, titled with its true class and the top-3
    predictions (green: right, red: wrong). ``maps``: (N, H, W) in [0, 1] (``explain.grad_cam``)."""
    n = len(images)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(2 * columns * 1.45, rows * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        top3 = np.argsort(-probs[i], kind="stable")[:3]
        right = top3[0] == labels[i]
        image_ax, map_ax = axes[i // columns, 2 * (i % columns)], axes[i // columns, 2 * (i % columns) + 1]
        image_ax.imshow(images[i])
        image_ax.set_title(f"true: {names[labels[i]][:16]}", fontsize=6, loc="left")
        map_ax.imshow(images[i])
        map_ax.imshow(maps[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        lines = "\n".join(f"{names[c][:14]} {probs[i, c]:.2f}" for c in top3)
        map_ax.set_title(lines, fontsize=5.5, loc="left", color="green" if right else "red")
    fig.suptitle("Grad-CAM on the last conv layer: right predictions, then wrong ones", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
