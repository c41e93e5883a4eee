"""Command line: python -m data_prep {download,extract,check,reorganise,subset,synthetic} --help"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from . import (
    OFFICIAL_URL,
    HashMismatchError,
    check,
    download,
    extract,
    flatten_train,
    make_subset,
    make_synthetic,
    reorganise_val,
    summary_table,
)
from .extract import UndecodableImages
from .subset import CLASS_GRAMMAR, DEFAULT_CLASSES, counts_table
from .tiny_imagenet import DataFormatError

LISTED_FAILURES = 20  # undecodable images named one per line; the rest are counted


# Copies by default (copy-on-write clones where the file system offers them), so that editing a
# file of the new folder never changes the original dataset.
LINK_HELP = (
    "hard-link the images instead of copying them: no extra disk space, but each new file is then the "
    "original itself, and editing one (an image editor saving in place) edits the other"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__)
    steps = parser.add_subparsers(dest="step", required=True)

    p = steps.add_parser("download", help="fetch the official zip (or copy a local one) and check it")
    p.add_argument("--source", default=OFFICIAL_URL, help="URL or local zip path (default: the official URL)")
    p.add_argument("--out", default="data", help="folder for the zip (default: data)")
    p.add_argument("--sha256", default=None, help="expected sha256 of the zip; a mismatch is an error")

    p = steps.add_parser("extract", help="unzip and check the layout")
    p.add_argument("zip", help="path of tiny-imagenet-200.zip")
    p.add_argument("--out", default="data", help="folder to extract into (default: data)")

    p = steps.add_parser(
        "check", help="check a dataset folder (any layout the loader reads) and name the images two splits share"
    )
    p.add_argument("root", help="dataset folder, e.g. data/tiny-imagenet-200 or what subset wrote")
    p.add_argument("--decode", action="store_true", help="also decode every image and name those that fail")

    p = steps.add_parser("reorganise", help="val images into val/<wnid>/ class folders (originals kept)")
    p.add_argument("root")
    p.add_argument("--flat-train", action="store_true", help="also write train_images/<wnid>/ without images/")
    p.add_argument("--link", action="store_true", help=LINK_HELP)

    p = steps.add_parser("subset", help="N classes x M images, optionally split into train/val/test")
    p.add_argument("root")
    p.add_argument("--out", required=True, help="new folder for the subset")
    p.add_argument(
        "--classes",
        default=DEFAULT_CLASSES,
        help=f"{CLASS_GRAMMAR.removesuffix(' (default: all)')} (default: {DEFAULT_CLASSES})",
    )
    p.add_argument("--images-per-class", type=int, default=None, help="train images per class (default: all)")
    p.add_argument("--split", default=None, help="split train images per class, e.g. 400/50/50")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--link", action="store_true", help=LINK_HELP)

    p = steps.add_parser("synthetic", help="a small learnable synthetic dataset in the Tiny ImageNet layout")
    p.add_argument("--out", default="data")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--train-per-class", type=int, default=200)
    p.add_argument("--val-per-class", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
    except BrokenPipeError:
        # The reader (e.g. "| head -1") has gone: stop quietly. Python's docs recommend pointing
        # stdout at devnull so that the final flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE
    except KeyboardInterrupt:
        print("error: interrupted; run the step again to finish it", file=sys.stderr)
        return 130
    except UndecodableImages as err:
        for message in err.failures[:LISTED_FAILURES]:
            print(message, file=sys.stderr)
        if len(err.failures) > LISTED_FAILURES:
            print(f"... and {len(err.failures) - LISTED_FAILURES} more", file=sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (DataFormatError, HashMismatchError, ValueError, OSError) as err:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            err = out_of_space(args, err)
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def out_of_space(args, err: OSError) -> str:
    """A full disk in one line: the folder, and that the step left nothing half-written (each step
    writes to a temporary folder, removed when it fails, and renames it only when complete)."""
    folder = getattr(args, "out", None) or getattr(args, "root", None) or "the output folder"
    # The file being written, where the error names one inside that folder (a copy's error may
    # name its source, which is only read).
    inside = err.filename and os.path.realpath(err.filename).startswith(os.path.realpath(folder) + os.sep)
    written = f" (writing {err.filename})" if inside else ""
    return (
        f"{folder}: out of disk space{written}; the half-written copy was "
        "removed and nothing of yours changed: free some space and run the same step again"
    )


def run(args) -> None:
    if args.step == "download":
        print(download(args.source, args.out, args.sha256))
    elif args.step == "extract":
        root = extract(args.zip, args.out)
        print(report(check(root)))
        print(root)
    elif args.step == "check":
        print(report(check(args.root, decode=args.decode)))
    elif args.step == "reorganise":
        made = reorganise_val(args.root, link=args.link)
        print(f"val: {made} class folders created")
        if args.flat_train:
            print(f"train_images: {flatten_train(args.root, link=args.link)} class folders created")
    elif args.step == "subset":
        out = make_subset(args.root, args.out, args.classes, args.images_per_class, args.split, args.seed, args.link)
        import pandas as pd

        print(counts_table(pd.read_csv(out / "manifest.csv").to_dict("records")).to_string())
        print(out)
    elif args.step == "synthetic":
        print(make_synthetic(args.out, args.classes, args.train_per_class, args.val_per_class, seed=args.seed))


def report(summary) -> str:
    """``check``'s summary as printed: the table of splits, then the images two splits share, if any."""
    return "\n".join([summary_table(summary), *summary.shared_report()])


if __name__ == "__main__":
    sys.exit(main())
