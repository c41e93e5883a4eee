"""Data benchmark on the real zip: decode the train split, reload it from the cache, reorganise val.

    python benchmarks/bench_data.py [--zip PATH]

Prints images/s for decoding and seconds for the cached reload and the val reorganisation.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alexnet_tf.data import load_dataset  # noqa: E402
from data_prep import extract, reorganise_val  # noqa: E402

DEFAULT_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "tiny-imagenet-200.zip"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zip", default=os.environ.get("TINY_IMAGENET_ZIP", DEFAULT_ZIP))
    args = parser.parse_args()
    if not Path(args.zip).is_file():
        sys.exit(f"{args.zip} not found: pass --zip or set TINY_IMAGENET_ZIP")
    with tempfile.TemporaryDirectory() as work:
        t = time.perf_counter()
        root = extract(args.zip, Path(work) / "data")
        print(f"extract zip:              {time.perf_counter() - t:7.1f} s")
        cache = Path(work) / "cache"

        t = time.perf_counter()
        x, y, names = load_dataset(root, "train", cache_dir=cache)
        decode_s = time.perf_counter() - t
        print(f"decode train ({len(x)} JPEGs, {os.cpu_count()} cores): {len(x) / decode_s:7.0f} images/s "
              f"({decode_s:.1f} s, {x.nbytes / 2**30:.2f} GiB uint8)")
        del x
        t = time.perf_counter()
        x, _, _ = load_dataset(root, "train", cache_dir=cache)
        print(f"cached reload of train:   {time.perf_counter() - t:7.2f} s")

        t = time.perf_counter()
        made = reorganise_val(root)
        print(f"reorganise val ({made} folders): {time.perf_counter() - t:5.2f} s")


if __name__ == "__main__":
    main()
