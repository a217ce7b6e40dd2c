"""``rlref train CONFIG [--out DIR] [--max-steps N] [key=value ...]`` and ``rlref train --list-configs``."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="a YAML path or the name of a shipped config (--list-configs)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of config keys (values parsed as YAML)")
    p.add_argument("--out", default="runs/train", help="output folder: metrics.jsonl, checkpoint.pt (resumed when present)")
    p.add_argument("--max-steps", type=int, default=None, help="run at most N more steps in this call")
    p.add_argument("--list-configs", action="store_true", help="list the shipped configs and exit")


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Run ``rlref train`` from parsed ``args`` (or an argv list)."""
    if not isinstance(args, argparse.Namespace):
        p = argparse.ArgumentParser(prog="rlref train")
        add_arguments(p)
        args = p.parse_intermixed_args(args)
    from rlref.llm.train.config import load_config, shipped_configs

    if args.list_configs:
        for name in shipped_configs():
            print(name)
        return 0
    if not args.config:
        print("rlref train: error: CONFIG is required (or --list-configs)", file=sys.stderr)
        return 2
    from rlref.llm.train.loop import train

    try:
        cfg = load_config(args.config, list(args.overrides))
        train(cfg, args.out, max_steps=args.max_steps)
    except ValueError as exc:
        print(f"rlref train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
