"""A shipped network: written from a finished run as float16 weights and a record, loaded in one
line with its class names, predicting as its run did, fetched once with its hash checked where
the package has no weights file beside it, and used by predict and Grad-CAM."""

import json
import shutil

import numpy as np
import pytest
from test_data_prep import _Server

from alexnet_tf import shipped
from alexnet_tf.explain import grad_cam
from alexnet_tf.run_folder import RunFolder
from alexnet_tf.saved_run import predict_files, score_network, ship
from conftest import cli
from data_prep.fsutil import file_sha256
from data_prep.images import load_dataset


@pytest.fixture(scope="module")
def toy(learned_run, synthetic_root, tmp_path_factory):
    """The learned run shipped as "toy" into a folder of its own: (folder, record)."""
    out = tmp_path_factory.mktemp("weights")
    return out, ship(learned_run[1].run_dir, "toy", synthetic_root, out, "python -m alexnet_tf train --preset quick")


def test_the_shipped_network_predicts_as_its_run_did_and_scores_as_its_record_says(toy, learned_run, synthetic_root):
    out, record = toy
    run = RunFolder.open_finished(learned_run[1].run_dir)
    net = shipped.pretrained("toy", weights_dir=out)
    assert net.classes == [tuple(c) for c in run.classes] and net.config == run.config
    assert record["sha256"] == file_sha256(out / record["file"]) and record["dtype"] == "float16"
    float32_bytes = sum(np.asarray(w).size * 4 for w in run.model.get_weights())
    assert record["bytes"] < 0.55 * float32_bytes  # float16: about half
    x = load_dataset(synthetic_root, "val", cache=False)[0]
    ours, theirs = net.model.predict(x, verbose=0), run.model.predict(x, verbose=0)
    assert np.abs(ours - theirs).max() < 0.02 and (ours.argmax(1) == theirs.argmax(1)).mean() >= 0.98
    score = score_network(net, synthetic_root)
    assert score["top1_accuracy"] == record["shipped_scores"]["top1_accuracy"] and score["images"] == 100
    assert abs(score["top1_accuracy"] - record["run_scores"]["top1_accuracy"]) <= 0.02  # 100 images, flips averaged
    maps = grad_cam(net.model, x[:4])
    assert maps.shape == (4, 64, 64) and np.isfinite(maps).all()


def test_predict_with_a_shipped_network_needs_no_run_folder(toy, synthetic_root, tmp_path, monkeypatch, capsys):
    out, record = toy
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", out)
    image = tmp_path / "photo.jpg"
    shutil.copy(next((synthetic_root / "val").rglob("*.JPEG")), image)
    (tmp_path / "toy").mkdir()  # a folder named like the network is never taken for it
    monkeypatch.chdir(tmp_path)
    code, printed, err = cli(["predict", "--pretrained", "toy", image, "--top", "3"], capsys)
    assert code == 0, err
    lines = printed.splitlines()
    assert lines[0] == str(image) and len(lines) == 4 and lines[1].split()[1] in {c[0] for c in record["class_names"]}
    assert list(predict_files(shipped.pretrained("toy"), [image])["file"]) == [str(image)]
    code, _, err = cli(["predict", "--pretrained", "nothing", image], capsys)
    assert code == 1 and "no shipped network 'nothing'" in err and "toy" in err
    code, _, err = cli(["predict", "toy", image], capsys)  # the folder, as a run folder: refused as one
    assert code == 1 and "toy" in err


def test_without_the_file_beside_it_the_network_is_fetched_once_and_checked(toy, tmp_path):
    out, record = toy
    records = tmp_path / "records"  # a pip-installed package: the record, not the weights file
    records.mkdir()
    shutil.copy(out / "toy.json", records)
    cache = tmp_path / "cache"
    with _Server(out) as url:
        net = shipped.pretrained("toy", weights_dir=records, cache_dir=cache, base_url=url + "/")
    assert (cache / "alexnet_tf" / record["file"]).is_file()
    again = shipped.pretrained("toy", weights_dir=records, cache_dir=cache, base_url="http://127.0.0.1:9/")
    for a, b in zip(net.model.get_weights(), again.model.get_weights()):  # from the cache: the server is gone
        np.testing.assert_array_equal(a, b)
    (records / "toy.json").write_text(json.dumps({**record, "sha256": "0" * 64}))
    shutil.rmtree(cache)
    with _Server(out) as url, pytest.raises(ValueError, match="(?i)hash"):
        shipped.pretrained("toy", weights_dir=records, cache_dir=cache, base_url=url + "/")


def test_a_changed_weights_file_in_the_checkout_is_refused(toy, tmp_path):
    out, record = toy
    copy = tmp_path / "weights"
    shutil.copytree(out, copy)
    data = bytearray((copy / record["file"]).read_bytes())
    data[-1] ^= 1
    (copy / record["file"]).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is not the file its record names"):
        shipped.pretrained("toy", weights_dir=copy)


def test_a_record_that_contradicts_its_config_is_refused(toy, tmp_path):
    out, record = toy
    copy = tmp_path / "weights"
    shutil.copytree(out, copy)
    (copy / "toy.json").write_text(json.dumps({**record, "classes": record["classes"] + 1}))
    with pytest.raises(ValueError, match="contradicts itself"):
        shipped.pretrained("toy", weights_dir=copy)
