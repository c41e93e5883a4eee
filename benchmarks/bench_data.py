"""Data benchmark on the real zip: decode the train split, reload it from the cache, reorganise val.

    python benchmarks/bench_data.py [--zip PATH]

Prints images/s for decoding (each JPEG decoded twice: once more to see that it is not cut short),
seconds for listing the train files, for hashing every one (sha256, the cache's key and the run
manifest's column; what a first load and a file changed since pay), for the cached reload (the
listing, each file's hash taken from the memo after an ``os.stat``, the arrays mapped and
checksummed) and for the val reorganisation.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import add_data_arguments, dataset

from data_prep import reorganise_val
from data_prep.images import file_hashes, load_dataset, select_files


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the hashing workers): on a machine where
    something else runs too, what the work costs, beside the wall time it took."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_data_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        t = time.perf_counter()
        root = dataset(args, Path(work) / "data")
        if not args.data:
            print(f"extract zip:              {time.perf_counter() - t:7.1f} s")
        cache = Path(work) / "cache"

        t = time.perf_counter()
        x, _y, _names = load_dataset(root, "train", cache_dir=cache)
        decode_s = time.perf_counter() - t
        print(
            f"decode train ({len(x)} JPEGs, {os.cpu_count()} cores): {len(x) / decode_s:7.0f} images/s "
            f"({decode_s:.1f} s, {x.nbytes / 2**30:.2f} GiB uint8)"
        )
        del x
        t = time.perf_counter()
        files, _, _ = select_files(root, "train")
        list_s = time.perf_counter() - t
        t = time.perf_counter()
        file_hashes(files, memo_dir=Path(work) / "fresh-memo")  # no memo yet: every file is read
        print(f"list train files:         {list_s:7.2f} s")
        print(f"hash train ({len(files)} files, sha256): {time.perf_counter() - t:5.2f} s")
        for _ in range(2):  # the second: the memo of the files hashed within 2 s of a change re-read
            t, cpu = time.perf_counter(), cpu_seconds()
            _x, _, _ = load_dataset(root, "train", cache_dir=cache)
            del _x
            print(
                f"cached reload of train:   {time.perf_counter() - t:7.2f} s (list, stat every file for its "
                f"memoised hash, map the arrays; {cpu_seconds() - cpu:.2f} CPU seconds in all processes)"
            )

        t = time.perf_counter()
        made = reorganise_val(root)
        print(f"reorganise val ({made} folders): {time.perf_counter() - t:5.2f} s")


if __name__ == "__main__":
    main()
