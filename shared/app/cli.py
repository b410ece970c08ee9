"""The `xor-rosetta` command line. Each subcommand is a module of `xor_rosetta.app.commands` with NAME, HELP,
`add_arguments(parser)` and `run(args) -> exit status`; this module parses, dispatches and turns errors into
one-line messages.

`main` installs its signal handlers before it imports anything heavy (NumPy, the frameworks): this module imports
only the standard library at the top, so that Ctrl-C at any moment ends in one line, never a traceback.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_PIPE = 130, 143, 141  # 128 + SIGINT, SIGTERM, SIGPIPE, as the shell reports
# modules of xor_rosetta.app.commands, in --help order
COMMANDS = ["listing", "train", "compare", "check", "verify", "bench", "guide", "sweep", "matrix"]


def writable_dir(path: str | Path) -> Path:
    import tempfile

    from ..errors import XorRosettaError
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise XorRosettaError(f"output directory {str(out)!r} is not writable ({e.strerror}); choose another with --out")
    return out


def impl_names(arg: str | None) -> list[str]:
    """The implementations named by --impls a,b,... (default, when the flag is absent: all). Naming none, or one
    twice, or an unknown one, or a plug-in that does not load (imported here to find out), is bad input."""
    from .. import registry
    from ..errors import XorRosettaError
    if arg is None:
        return list(registry.REGISTRY)
    names = [n.strip() for n in arg.split(",") if n.strip()]
    if not names:
        raise XorRosettaError(f"--impls names no implementation (got {arg!r}); give a,b,... or leave it out for all")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise XorRosettaError(f"--impls names {', '.join(map(repr, twice))} more than once")
    for n in names:
        entry = registry.get_entry(n)
        if not entry.builtin:  # a plug-in that does not load is bad input; a built-in's missing framework is not
            problem = registry.load_problem(entry)
            if problem is not None:
                raise XorRosettaError(f"--impls: {n!r} cannot be used: {problem}")
    return names


def steps_value(text: str) -> int:
    """--steps: a whole number (1000000, or 1e6); its range is the spec's (1 .. spec.MAX_STEPS)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v != int(v):
        raise argparse.ArgumentTypeError(f"expected a whole number of steps, got {text!r}")
    return int(v)


def threshold_value(text: str) -> float:
    """--threshold: a finite loss > 0."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite loss > 0, got {text!r}")
    return v


def add_spec_options(sp) -> None:
    """Where the experiment comes from, and the overrides: train and compare."""
    from ..presets import PRESETS
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME", help=f"a named experiment: {', '.join(PRESETS)}")
    src.add_argument("--config", metavar="FILE.toml", help="an experiment file (docs/getting-started.md)")
    sp.add_argument("--init", metavar="FILE.npz", help="initial weights W0, b0, W1, b1, ... (shapes checked)")
    sp.add_argument("--dtype", metavar="float32|float64", help="override the spec's dtype")
    sp.add_argument("--steps", type=steps_value, metavar="N", help="override the spec's number of steps "
                    "(at most 1,000,000,000)")
    sp.add_argument("--out", metavar="DIR", help="output folder")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage block first)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    import importlib
    p = Parser(prog="xor-rosetta", description="The XOR MLP in NumPy, PyTorch, Keras and JAX, side by side: train, "
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


_received: list[int] = []  # signals that arrived during main(), whether or not their exception got through


def _on_signal(signum, frame):
    """SIGINT and SIGTERM: record the signal, then end the command with KeyboardInterrupt or SystemExit(143).

    Raised inside a gc or weakref callback or a __del__, that exception is swallowed by Python ("Exception
    ignored"); the record is what makes the signal impossible to lose: `_unraisable` delivers it again at once, and
    `main` exits 130 or 143 at the end whatever happened to the exception (`_outcome`)."""
    _received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    e = SystemExit(EXIT_TERMINATED)
    e.signal = signum  # marks it as a signal's: code that excuses a plug-in's sys.exit() lets it through
    raise e


def _unraisable(hook):
    """A sys.unraisablehook that re-delivers a signal whose exception Python swallowed (it was raised in a gc or
    weakref callback, or a __del__): the handler runs again at the next point Python can raise from."""
    def unraisable(u):
        if _received and isinstance(u.exc_value, (KeyboardInterrupt, SystemExit)):
            import _thread
            while True:
                try:
                    # sent from another thread, a moment later: its handler runs in the main thread once this hook
                    # and the callback have returned (sent from here, or with _thread.interrupt_main, it would run in
                    # this hook); _thread does not wait for the thread to start, as threading's Timer does
                    _thread.start_new_thread(_send_later, (_received[-1],))
                    return  # not "Exception ignored ... SystemExit: 143": the signal is acted on
                except (KeyboardInterrupt, SystemExit):  # a signal arrived in this hook after all: send it again
                    continue
        hook(u)
    return unraisable


def _send_later(signum: int) -> None:
    import os
    import time
    time.sleep(0.01)
    os.kill(os.getpid(), signum)


def _outcome(status: int) -> int:
    """The exit status, 130 or 143 once a signal has arrived: its exception may have been swallowed on its way."""
    if not _received or status in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        return status
    if _received[-1] == signal.SIGINT:
        _say("xor-rosetta: interrupted; earlier results are intact")
        return EXIT_INTERRUPTED
    _say("xor-rosetta: terminated; earlier results are intact")
    return EXIT_TERMINATED


def _say(line: str) -> None:
    """One line on stderr, whatever state stderr is in."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _streams() -> None:
    """Text that the terminal's encoding cannot show is escaped (\\u0394), not an error."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def _stdout_closed() -> int:
    """The reader of stdout went away (`| head -1`): stop quietly, as other Unix tools do."""
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the final flush at exit has somewhere to go
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_PIPE


def main(argv=None) -> int:
    # first of all: before any heavy import
    del _received[:]
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        _streams()
        status = _outcome(_run(argv, debug))
    except SystemExit as e:  # --help, a usage error, SIGTERM
        _flush()
        if _received and e.code not in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            raise SystemExit(_outcome(e.code if isinstance(e.code, int) else EXIT_FAIL)) from None
        raise
    finally:
        for s, h in previous.items():  # main() may be called in-process (tests)
            signal.signal(s, h)
        sys.unraisablehook = hook
    return _flush() or status


def _flush() -> int | None:
    """Flush stdout now, so that a reader that went away is noticed here and not as a traceback at exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_closed()
    except (OSError, ValueError):
        pass
    return None


def _run(argv, debug: bool) -> int:
    try:
        from ..errors import XorRosettaError
        a = parser().parse_args(argv)
        debug = a.debug
        try:
            return a.func(a)
        except XorRosettaError as e:
            if debug:
                raise
            _say(f"xor-rosetta: error: {e}")
            return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say("xor-rosetta: interrupted; earlier results are intact")
        return EXIT_INTERRUPTED
    except SystemExit as e:
        if e.code == EXIT_TERMINATED:
            _say("xor-rosetta: terminated; earlier results are intact")
        raise
    except BrokenPipeError:
        return _stdout_closed()
    except MemoryError:
        if debug:
            raise
        _say("xor-rosetta: error: out of memory; use fewer steps (--steps) or smaller layers")
        return EXIT_BAD_INPUT
    except OSError as e:  # the file system refused: full, read-only, gone
        if debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        _say(f"xor-rosetta: error: {e.strerror or e}{where}")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
