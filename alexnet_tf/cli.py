"""python -m alexnet_tf {main,train,evaluate}: training and evaluation from the command line.

  main      data -> train -> evaluate -> figures on the synthetic set, or on --data
  train     one run from a preset plus any config field as an option (--epochs 10 ...)
  evaluate  re-evaluate a saved run folder on any split; --export model.h5 writes HDF5 too
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing


def _add_config_options(parser):
    from .config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name == "augment":
            parser.add_argument("--augment", type=json.loads, default=None,
                                help='augmentation settings as JSON, e.g. \'{"rotation_degrees": 10, "crop_padding": 4}\'')
            continue
        hint = hints[f.name]
        kwargs = {"default": None, "dest": f.name}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif hint in (int, float, str):
            kwargs["type"] = hint
        else:  # classes (int or comma-separated wnids), lr_drops, optional values
            kwargs["type"] = _parse_loose
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def _parse_loose(text):
    if text.lower() == "none":
        return None
    if "," in text:
        return [_parse_loose(t) for t in text.split(",") if t]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _config_from(args):
    from .config import TrainConfig, preset

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
    return preset(args.preset, **overrides)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alexnet_tf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("main", "data -> train -> evaluate -> figures (synthetic data unless --data)"),
                       ("train", "train one run")):
        p = commands.add_parser(name, help=text)
        p.add_argument("--preset", default="default", help="quick, default, tiny10 or tiny200")
        _add_config_options(p)
    p = commands.add_parser("evaluate", help="re-evaluate a saved run folder")
    p.add_argument("run_dir")
    p.add_argument("--split", default="val")
    p.add_argument("--data", default=None, help="dataset folder or zip (default: the run's own)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--export", default=None, help="also save the model here (a .h5 path: legacy HDF5)")
    args = parser.parse_args(argv)

    from .tiny_imagenet import DataFormatError
    try:
        if args.command == "evaluate":
            from .training import evaluate_saved

            metrics = evaluate_saved(args.run_dir, args.split, args.data, args.export, args.tta)
            print(json.dumps(metrics, indent=2))
            return 0
        from .training import train

        result = train(_config_from(args))
        print(f"\nmetrics:  {result.run_dir / 'metrics.json'}\nfigures:  {result.run_dir / 'figures'}/\n"
              f"model:    {result.run_dir / 'model.keras'}")
    except (ValueError, FileNotFoundError, FileExistsError, DataFormatError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
