"""A full disk while extracting: one line naming the folder, nothing half-written left behind."""

import errno
import shutil
import zipfile

from data_prep.__main__ import main


def test_a_full_disk_while_extracting_is_one_line_and_leaves_nothing(synthetic_root, tmp_path, monkeypatch, capsys):
    archive = shutil.make_archive(str(tmp_path / "tiny"), "zip", synthetic_root.parent, synthetic_root.name)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")

    def full(self, path=None, members=None, pwd=None):
        (tmp_path / "partial").write_text("x")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(zipfile.ZipFile, "extractall", full)
    assert main(["extract", archive, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {out}: out of disk space") and "run the same step again" in err
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]  # no temporary folder, no dataset
    assert (out / "mine.txt").read_text() == "the user's"

    monkeypatch.undo()  # space again: the same step completes
    assert main(["extract", archive, "--out", str(out)]) == 0
    assert (out / synthetic_root.name / "wnids.txt").is_file()
