"""python -m alexnet_tf {main,train,evaluate,predict}: training and evaluation from the command line.

  main      data -> train -> evaluate -> figures (the synthetic set unless --data)
  train     one run: a preset plus any setting as an option (--epochs 10 ...)
  evaluate  re-evaluate a saved run folder on any split; --export model.h5 writes HDF5 too
  predict   the top-5 classes of your own image files by a trained run

examples:
  python -m alexnet_tf main
  python -m alexnet_tf train --preset tiny10 --data data/tiny-imagenet-200.zip
  python -m alexnet_tf evaluate runs/<name> --split test
  python -m alexnet_tf predict runs/<name> my_photo.jpg
  KERAS_BACKEND=jax python -m alexnet_tf train --distribute data-parallel \
      --coordinator 10.0.0.1:12345 --num-processes 2 --process-id 0    # and --process-id 1 on the other
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import signal
import sys
import typing

# What --verbose gives train(): one short line an epoch, Keras' progress bar, or Keras' line an epoch.
VERBOSITY = {"line": "line", "bar": 1, "epoch": 2}


def parse_classes(text: str):
    """``--classes``: the class grammar of ``data_prep subset`` (``data_prep.subset.parse_class_spec``)."""
    from data_prep.subset import parse_class_spec

    try:
        return parse_class_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _optional(parse):
    """``parse``, with "none" meaning None (unset), for settings that may be None."""
    return lambda text: None if text.strip().lower() == "none" else parse(text)


def _int_list(text):
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas, e.g. 20,25") from None


def _add_config_options(parser, preset_defaults):
    from .config import REFUSED, TrainConfig, choices

    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "augment":
            parser.add_argument(
                flag,
                type=json.loads,
                default=argparse.SUPPRESS,
                metavar="JSON",
                help='augmentation settings as JSON, e.g. \'{"rotation_degrees": 10, "crop_padding": '
                "4}'; unnamed settings keep their defaults (default: "
                f"{json.dumps(dataclasses.asdict(preset_defaults.get('augment', f.default_factory())))})",
            )
            continue
        hint = hints[f.name]
        optional = type(None) in typing.get_args(hint)
        # Not given: absent from the namespace, so a preset's value stands; "none" unsets an optional one.
        kwargs = {"default": argparse.SUPPRESS, "dest": f.name}
        default = preset_defaults.get(f.name, f.default_factory() if f.default is dataclasses.MISSING else f.default)
        text = f.metadata.get("help", f.name)
        allowed = choices(f.name)
        if allowed is not None:
            kwargs["choices"] = (*allowed, *REFUSED.get(f.name, ()), *((None,) if optional else ()))
            text += f"; one of {', '.join(allowed)}"
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.name == "classes":
            kwargs["type"], kwargs["metavar"] = parse_classes, "SPEC"
        elif f.name == "lr_drops":
            kwargs["type"], kwargs["metavar"] = _int_list, "E1,E2"
        elif f.name == "jit_compile":
            kwargs["type"], kwargs["metavar"] = _optional(_parse_bool), "{on,off,none}"
        elif allowed is not None:
            kwargs["type"] = _optional(str) if optional else str
            kwargs["metavar"] = "{" + ",".join((*allowed, "none") if optional else allowed) + "}"
        else:
            base = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
            kwargs["type"] = _optional(base) if optional else base
            kwargs["metavar"] = f.name.upper()
        if "(default: " in text and text.endswith(")"):  # the help says the default in words already
            kwargs["help"] = text[:-1] + ("; none unsets it)" if optional else ")")
        else:
            kwargs["help"] = (
                f"{text} (default: {'none' if default is None else default}{'; none unsets it' if optional else ''})"
            )
        parser.add_argument(flag, **kwargs)


def _parse_bool(text):
    if text.lower() in ("on", "true", "yes", "1"):
        return True
    if text.lower() in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: give on or off")


def config_from_args(args):
    from .config import TrainConfig, preset

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if isinstance(overrides.get("augment"), dict):  # settings it does not name keep the preset's values
        base = dataclasses.asdict(preset(args.preset).augment)
        overrides["augment"] = {**base, **overrides["augment"]}
    return preset(args.preset, **overrides)


def build_parser():
    from .config import PRESETS

    parser = argparse.ArgumentParser(
        prog="python -m alexnet_tf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{main,train,evaluate,predict}")
    _add_train_commands(commands, PRESETS)
    _add_evaluate_command(commands)
    _add_predict_command(commands)
    return parser


def _add_train_commands(commands, presets) -> None:
    """``main`` and ``train``: a preset, its options, and the processes of a data-parallel run."""
    for name, text, preset_name in (
        ("main", "data -> train -> evaluate -> figures (synthetic data unless --data)", "default"),
        ("train", "train one run from a preset and options", "default"),
    ):
        p = commands.add_parser(name, help=text, description=text)
        p.add_argument(
            "--preset",
            default=preset_name,
            choices=sorted(presets),
            help=f"starting settings; options override them (default: {preset_name}; defaults below are that preset's)",
        )
        p.add_argument(
            "--verbose",
            choices=sorted(VERBOSITY),
            default=None,
            help="what training prints: line (one short line an epoch), bar (Keras' progress bar) or epoch "
            "(Keras' summary of each epoch) (default: bar on a terminal, line when the output goes to a file "
            "or a pipe)",
        )
        _add_config_options(p, presets[preset_name])
        _add_launch_options(p)


def _add_launch_options(p) -> None:
    launch = p.add_argument_group(
        "several processes (--distribute data-parallel, JAX)",
        "Start the same command once per process, changing only --process-id; process 0 writes the run "
        "folder. Unset, these come from KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES "
        "and KERAS_DISTRIBUTION_PROCESS_ID, or this is the only process.",
    )
    launch.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        default=None,
        help="address of process 0, where the processes meet (default: none)",
    )
    launch.add_argument(
        "--num-processes",
        metavar="N",
        type=int,
        default=None,
        help="how many processes train together (default: none)",
    )
    launch.add_argument(
        "--process-id", metavar="I", type=int, default=None, help="this process, 0 to N-1 (default: none)"
    )


def _add_evaluate_command(commands) -> None:
    p = commands.add_parser(
        "evaluate",
        help="re-evaluate a saved run folder on any split",
        description="Re-evaluate a saved run folder; an unlabelled split gets predictions.",
    )
    p.add_argument("run_dir", help="a finished run folder, runs/<name>")
    p.add_argument("--split", default="val", help="train, val or test (default: val)")
    p.add_argument("--data", default=None, help="dataset folder or zip (default: the run's own)")
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average over each image and its mirror (default: as the run was configured)",
    )
    p.add_argument("--export", default=None, help="also save the model here (a .h5 path: legacy HDF5)")
    p.add_argument(
        "--as",
        dest="name",
        default=None,
        metavar="NAME",
        help="a separate evaluation, written to RUN/evaluations/NAME/: for data other than the run's "
        "own, which is otherwise refused (default: none, the run's own files)",
    )


def _add_predict_command(commands) -> None:
    from .shipped import names as shipped_names

    p = commands.add_parser(
        "predict",
        help="the top-5 classes of your own images by a trained run or a shipped network",
        usage="python -m alexnet_tf predict [--top K] RUN_DIR IMAGE [IMAGE ...]\n"
        "       python -m alexnet_tf predict [--top K] --pretrained NAME IMAGE [IMAGE ...]",
        description="Classify image files of any size or colour mode with a finished run's model, or with a "
        "network the project ships (resized as training resized its images).",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_DIR IMAGE",
        help="a finished run folder (runs/<name>), then image files (JPEG, PNG, ...); with --pretrained, "
        "image files only",
    )
    p.add_argument(
        "--pretrained",
        metavar="NAME",
        help=f"a shipped network instead of a run folder ({', '.join(shipped_names()) or 'none shipped'}; "
        "alexnet_tf.pretrained)",
    )
    p.add_argument(
        "--top", type=int, default=5, metavar="K", help="how many classes to list for each image (default: 5)"
    )


def print_predictions(table) -> None:
    """Each file, then its top classes: probability, wnid and name."""
    (top,) = [c for c in table.columns if c.startswith("top") and "_" not in c]
    for row in table.to_dict("records"):
        print(row["file"])
        for wnid, probability, name in zip(
            row[top].split(), row[f"{top}_probability"].split(), row[f"{top}_names"].split("|")
        ):
            print(f"  {float(probability):6.1%}  {wnid}  {name}")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler, a closing terminal): a run ends as it does on Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated


def verbosity(choice=None):
    """``train``'s ``verbose`` for ``--verbose`` (None: a progress bar on a terminal, else a line an epoch)."""
    return VERBOSITY[choice or ("bar" if sys.stdout.isatty() else "line")]


def _stopped(config) -> str:
    """What a stopped run keeps and how it goes on, for the last line of an interrupted ``train``."""
    if config is None:
        return "nothing to resume: run the command again"
    from .run_folder import RunFolder

    run = RunFolder(config)
    if run.finished:
        return f"{run.path} is finished"
    return f"{run.saved()}; run the same command again to resume from there"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # no Keras yet: help and refused options come at once
    try:
        previous_handler = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: SIGTERM keeps its handler
        previous_handler = None
    try:
        return _run(args)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _run(args) -> int:
    from data_prep.tiny_imagenet import DataFormatError

    from . import load_keras

    config = None
    try:
        # What can be refused without Keras is refused first; then Keras loads.
        if args.command == "predict":
            if args.top < 1:
                raise ValueError(f"--top {args.top}: give at least 1")
            if args.pretrained is None and len(args.paths) < 2:
                raise ValueError(
                    "give a finished run folder, then image files (or --pretrained NAME, then image files)"
                )
        if args.command in ("main", "train"):
            config = config_from_args(args)
        load_keras()
        if args.command == "predict":
            from .saved_run import predict_files

            if args.pretrained is not None:
                from .shipped import pretrained

                source, images = pretrained(args.pretrained), args.paths
            else:
                source, images = args.paths[0], args.paths[1:]
            failed = []
            table = predict_files(source, images, args.top, failed=failed)
            if len(table):
                print_predictions(table)
            sys.stdout.flush()
            for line in failed:
                print(f"error: {line}", file=sys.stderr)
            if failed:
                return 1
        elif args.command == "evaluate":
            from .saved_run import evaluate_saved

            metrics = evaluate_saved(args.run_dir, args.split, args.data, args.export, args.tta, args.name)
            print(json.dumps(metrics, indent=2))
        else:
            from . import distribute

            if distribute.multi_process_requested(args.coordinator, args.num_processes, args.process_id):
                if config.distribute != "data-parallel":
                    raise ValueError(
                        "--coordinator, --num-processes and --process-id (or KERAS_DISTRIBUTION_*) "
                        "are for --distribute data-parallel"
                    )
                distribute.start_processes(args.coordinator, args.num_processes, args.process_id)
            from .run_folder import RunFolder
            from .training import train

            result = train(config, verbose=verbosity(args.verbose))
            run = RunFolder.at(result.run_dir)
            print(f"\nmetrics:  {run.metrics_file}\nfigures:  {run.figures}/\nmodel:    {run.model_file}")
        sys.stdout.flush()  # a closed pipe shows here, inside the try
    except BrokenPipeError:  # e.g. "... | head": the reader left; end quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, OSError, DataFormatError, FloatingPointError) as err:  # OSError: files, folders, disks
        if isinstance(err, OSError) and err.errno == errno.ENOSPC and config:
            from .run_folder import DiskFull, RunFolder, shown

            if not isinstance(err, DiskFull):
                # The file being written where the error names one in the run folder, else the folder.
                folder = RunFolder(config).path
                inside = err.filename and os.path.realpath(err.filename).startswith(os.path.realpath(folder) + os.sep)
                err = (
                    f"{shown(err.filename if inside else folder)}: out of disk space, so the run stopped; "
                    f"{_stopped(config)}"
                )
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated)
        print(f"\ninterrupted: {_stopped(config)}", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
