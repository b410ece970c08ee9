"""The `xor-rosetta` command line. Each subcommand is a module of `xor_rosetta.app.commands` with NAME, HELP,
`add_arguments(parser)` and `run(args) -> exit status`; this module parses, dispatches and turns errors into
one-line messages."""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import tempfile
from pathlib import Path

from .. import registry
from ..errors import XorRosettaError
from ..presets import PRESETS

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
# modules of xor_rosetta.app.commands, in --help order
COMMANDS = ["listing", "train", "compare", "check", "bench", "guide", "sweep"]


def writable_dir(path: str | Path) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise XorRosettaError(f"output directory {str(out)!r} is not writable ({e.strerror}); choose another with --out")
    return out


def impl_names(arg: str | None) -> list[str]:
    """The implementations named by --impls a,b,... (default: all); unknown names are bad input."""
    if not arg:
        return list(registry.REGISTRY)
    names = [n.strip() for n in arg.split(",") if n.strip()]
    for n in names:
        registry.get_entry(n)
    return names


def add_spec_options(sp) -> None:
    """Where the experiment comes from, and the overrides: train and compare."""
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME", help=f"a named experiment: {', '.join(PRESETS)}")
    src.add_argument("--config", metavar="FILE.toml", help="an experiment file (see README)")
    sp.add_argument("--init", metavar="FILE.npz", help="initial weights W0, b0, W1, b1, ... (shapes checked)")
    sp.add_argument("--dtype", metavar="float32|float64", help="override the spec's dtype")
    sp.add_argument("--steps", type=int, metavar="N", help="override the spec's number of steps")
    sp.add_argument("--out", metavar="DIR", help="output folder")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage block first)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="xor-rosetta", description="The XOR MLP in NumPy, PyTorch and Keras, side by side: train, "
                                               "compare against the NumPy reference, check golden values.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    standard = argparse.ArgumentParser(add_help=False)  # on every command
    standard.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    standard.add_argument("--json", action="store_true", help="machine-readable results on stdout, nothing else")
    standard.add_argument("--quiet", action="store_true", help="no progress line, no notes")
    for module in COMMANDS:
        cmd = importlib.import_module(f".commands.{module}", __package__)
        sp = sub.add_parser(cmd.NAME, parents=[standard], help=cmd.HELP, description=cmd.HELP)
        cmd.add_arguments(sp)
        sp.set_defaults(func=cmd.run)
    return p


def _on_sigterm(signum, frame):
    raise SystemExit(143)


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return a.func(a)
    except XorRosettaError as e:
        if a.debug:
            raise
        print(f"xor-rosetta: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("xor-rosetta: interrupted; earlier results are intact", file=sys.stderr)
        return 130
    except SystemExit as e:
        if e.code == 143:
            print("xor-rosetta: terminated; earlier results are intact", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
