"""Command line: ``python -m functional_dl <command>``.

Commands:
  gradcheck   check every hand-derived gradient against jax.grad and finite differences
  demo        the quick-start demo
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    from . import grads

    names = list(grads.registry())
    if args.filter:
        names = [n for n in names if args.filter in n]
    if not names:
        print("no registered gradients match", file=sys.stderr)
        return 1
    width = max(len(n) for n in names)
    header = f"{'name':<{width}}  {'vs autodiff':>12}  {'vs fin.diff':>12}  result"
    print(header)
    print("-" * len(header))
    failed = 0
    for name in names:
        r = grads.check(name, seed=args.seed)
        status = "pass" if r.passed else "FAIL"
        failed += not r.passed
        print(f"{name:<{width}}  {r.max_rel_autodiff:12.2e}  {r.max_rel_fd:12.2e}  {status}")
    print("-" * len(header))
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    return _cmd_gradcheck(argparse.Namespace(filter=None, seed=0))


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m functional_dl`` argument parser."""
    parser = _Parser(prog="python -m functional_dl", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("gradcheck", help="check every hand-derived gradient")
    p.add_argument("--filter", default=None, help="only entries whose name contains this")
    p.add_argument("--seed", type=int, default=0, help="seed of the random cotangents")
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("demo", help="run the quick-start demo")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
