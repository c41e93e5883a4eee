"""Grad-CAM maps and predictions on your own images, from a quick run."""

import numpy as np
import pytest
from PIL import Image

from alexnet_tf.cli import main as cli_main
from alexnet_tf.evaluate import predict
from alexnet_tf.explain import grad_cam, last_conv_layer, right_and_wrong
from alexnet_tf.plots import plot_grad_cam
from alexnet_tf.saved_run import predict_files
from data_prep.images import load_dataset


@pytest.fixture
def quick(learned_run):
    return learned_run[1]  # trained once a session, shared with test_train


def test_grad_cam_has_the_images_size_is_finite_and_depends_on_the_class(quick, synthetic_root):
    images = load_dataset(synthetic_root, "val", cache=False)[0][:6]
    assert last_conv_layer(quick.model).name == "relu5"
    first, other = grad_cam(quick.model, images, 0), grad_cam(quick.model, images, 3)
    assert first.shape == (6, 64, 64) and first.dtype == np.float32
    assert np.isfinite(first.sum()) and first.min() >= 0 and first.max() <= 1 + 1e-6
    assert np.abs(first - other).max() > 0.05  # another class, another map
    predicted = grad_cam(quick.model, images)  # default: each image's predicted class
    own = np.argmax(predict(quick.model, images), 1)
    np.testing.assert_allclose(
        predicted, np.stack([grad_cam(quick.model, images[i : i + 1], own[i])[0] for i in range(6)]), atol=1e-4
    )


def test_grad_cam_figure_shows_right_and_wrong(quick, synthetic_root, tmp_path):
    x, y, names = load_dataset(synthetic_root, "val", cache=False)
    probs = predict(quick.model, x)
    chosen = right_and_wrong(y, probs, per_kind=2)
    right = np.argmax(probs[chosen], 1) == y[chosen]
    assert list(right) == sorted(right, reverse=True)  # right ones first
    plot_grad_cam(x[chosen], grad_cam(quick.model, x[chosen]), y[chosen], probs[chosen], names, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000


def test_predict_any_image_size_and_mode(quick, synthetic_root, tmp_path, capsys):
    source = next((synthetic_root / "val").rglob("*.JPEG"))
    rgb = Image.open(source).convert("RGB")
    files = []
    for mode, size in (("RGB", (120, 90)), ("L", (64, 64)), ("RGBA", (33, 47)), ("P", (200, 200))):
        path = tmp_path / f"mine-{mode}.png"
        rgb.resize(size).convert(mode).save(path)
        files.append(path)
    table = predict_files(quick.run_dir, files)
    assert list(table["file"]) == [str(f) for f in files]
    top5 = [[float(p) for p in row.split()] for row in table["top5_probability"]]
    assert all(len(row) == 5 and row == sorted(row, reverse=True) and sum(row) <= 1 + 1e-5 for row in top5)
    assert cli_main(["predict", str(quick.run_dir), str(files[0])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(files[0]) and len(out) == 6 and out[1].strip().endswith(table["name"][0])


@pytest.mark.parametrize("content", [b"not an image", None])
def test_predict_names_a_bad_or_missing_file(quick, tmp_path, capsys, content):
    bad = tmp_path / "photo.jpg"
    if content is not None:
        bad.write_bytes(content)
    code = cli_main(["predict", str(quick.run_dir), str(bad)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1 and str(bad) in err
