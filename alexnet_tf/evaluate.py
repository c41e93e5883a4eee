"""Evaluation: top-1/top-5 accuracy and error, per-class accuracy, confusion matrix and the
most-confused pairs, precision/recall/F1 (per class and macro)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd


def predict(model, images, batch_size=256, tta=False):
    """Class probabilities; with ``tta`` the average over each image and its mirror image."""
    probs = model.predict(images, batch_size=batch_size, verbose=0)
    if tta:
        probs = (probs + model.predict(np.ascontiguousarray(images[:, :, ::-1]), batch_size=batch_size, verbose=0)) / 2
    return probs


def topk_metrics(labels, probs) -> dict:
    """Top-1 and top-5 accuracy and error with Keras' own metrics."""
    probs = np.asarray(probs, dtype="float32")
    results = {}
    for k in (1, 5):
        metric = keras.metrics.SparseTopKCategoricalAccuracy(k=min(k, probs.shape[1]))
        metric.update_state(labels, probs)
        accuracy = float(metric.result())
        results[f"top{k}_accuracy"] = accuracy
        results[f"top{k}_error"] = 1.0 - accuracy
    return results


def confusion_matrix(labels, predicted, num_classes) -> np.ndarray:
    """counts[i, j]: images of true class i predicted as class j."""
    return np.bincount(
        np.asarray(labels) * num_classes + np.asarray(predicted), minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)


def per_class_report(confusion, class_names, descriptions=None) -> pd.DataFrame:
    """Per-class accuracy (= recall), precision, recall, F1 and support, plus a macro-average row."""
    true_pos = np.diag(confusion).astype(float)
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, true_pos / support, 0.0)
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    frame = pd.DataFrame(
        {
            "class": class_names,
            "name": descriptions or class_names,
            "accuracy": recall,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }
    )
    macro = {
        "class": "macro avg",
        "name": "",
        "accuracy": recall.mean(),
        "precision": precision.mean(),
        "recall": recall.mean(),
        "f1": f1.mean(),
        "support": support.sum(),
    }
    return pd.concat([frame, pd.DataFrame([macro])], ignore_index=True)


def confused_pairs(confusion, names, top=20) -> pd.DataFrame:
    """The ``top`` most frequent mistakes by name: true class, predicted class, how many images of
    the true class went to the predicted one, and that count as a share of the true class."""
    confusion = np.asarray(confusion)
    errors = confusion.copy()
    np.fill_diagonal(errors, 0)
    order = np.argsort(-errors, axis=None, kind="stable")[:top]
    true, predicted = np.unravel_index(order, errors.shape)
    keep = errors[true, predicted] > 0
    true, predicted = true[keep], predicted[keep]
    support = confusion.sum(1)
    return pd.DataFrame(
        {
            "true": [names[i] for i in true],
            "predicted": [names[j] for j in predicted],
            "images": errors[true, predicted],
            "share": errors[true, predicted] / np.maximum(support[true], 1),
        }
    )


def prediction_table(files, probs, class_names, descriptions=None, k=5) -> pd.DataFrame:
    """One row per image: its file, the predicted class, its name and probability, and the top-k classes
    (space-separated, most likely first): what unlabelled images such as Tiny ImageNet's test split get."""
    probs = np.asarray(probs)
    # Stable: of equal probabilities (frequent in bfloat16) the first class wins, as with argmax.
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    names = descriptions or class_names
    return pd.DataFrame(
        {
            "file": [str(f) for f in files],
            "predicted": [class_names[i] for i in top[:, 0]],
            "name": [names[i] for i in top[:, 0]],
            "probability": probs[np.arange(len(probs)), top[:, 0]],
            f"top{k}": [" ".join(class_names[i] for i in row) for row in top],
        }
    )


def evaluate_predictions(labels, probs, class_names, descriptions=None):
    """Everything above from one probability matrix: ``(metrics dict, per-class DataFrame, confusion)``."""
    labels = np.asarray(labels)
    if np.any(labels < 0):
        raise ValueError(
            f"{int(np.sum(labels < 0))} of {len(labels)} images have no label (-1, as in Tiny ImageNet's "
            "test split): there is nothing to score; list their predictions with prediction_table"
        )
    predicted = np.argmax(probs, axis=1)
    confusion = confusion_matrix(labels, predicted, len(class_names))
    report = per_class_report(confusion, class_names, descriptions)
    metrics = topk_metrics(labels, probs)
    metrics.update(
        macro_precision=float(report["precision"].iloc[-1]),
        macro_recall=float(report["recall"].iloc[-1]),
        macro_f1=float(report["f1"].iloc[-1]),
        images=len(labels),
    )
    return metrics, report, confusion
