"""How the launch/*.py entry points start: `cli.run(main)` instead of `app.run(main)`.

A user's mistake (a missing folder, a bad value, flags that contradict each other) is
reported by our own code as a `tfattncut.errors.UserError`, or a ValueError or OSError raised
in tfattncut/ or launch/, whose message names the flag or file; it is printed as one line,
`launch.NAME: error: MESSAGE`, with exit status 1, instead of a traceback. Errors raised
inside TensorFlow, Keras or any other library keep their traceback: those are the program's
problem, and the traceback is what a bug report needs. Bad flag
values are refused earlier still, while parsing (absl's FATAL flags error).

Flagfiles that name other flagfiles (configs/demo.cfg names configs/cut.cfg) are read by
absl relative to the folder the command runs in; from another folder absl would only say it
cannot open configs/cut.cfg, so `run` first names the flagfile that asks for it and the
folder the bundled presets expect.
"""
import os
import re
import sys

from absl import app, logging

from tfattncut.errors import UserError

# The repository: the tfattncut package, the launch/ entry points and configs/.
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Our code.
_OURS = tuple(os.path.join(_REPO, name) + os.sep for name in ("tfattncut", "launch"))
_FLAGFILE = re.compile(r"^--?flagfile=(.+)$")


def raised_by_us(error):
    """Whether the innermost frame that raised `error` is in tfattncut/ or launch/."""
    trace = error.__traceback__
    if trace is None:
        return False
    while trace.tb_next is not None:
        trace = trace.tb_next
    return os.path.abspath(trace.tb_frame.f_code.co_filename).startswith(_OURS)


def unreachable_nested_flagfile(argv):
    """(flagfile, name) for the first `--flagfile=name` line, in a flagfile that `argv` reads
    directly or through others, whose file does not exist from this folder; else None.
    (A missing flagfile given on the command line itself is left to absl's error.)"""
    for path, names in _flagfiles(argv):
        for name in names:
            if not os.path.isfile(os.path.expanduser(name)):
                return path, name
    return None


def _flagfiles(argv):
    """Yields (flagfile, the names of its `--flagfile=` lines) for each flagfile that `argv`
    reads, directly or through others, in the order absl reads them; only those that exist
    from this folder."""
    pending = [match.group(1) for match in map(_FLAGFILE.match, argv[1:]) if match]
    seen = set()
    while pending:
        path = os.path.expanduser(pending.pop(0))
        if path in seen or not os.path.isfile(path):
            continue
        seen.add(path)
        names = _named_flagfiles(path)
        yield path, names
        pending.extend(names)


def _unexpected(words, argv):
    """The usage error for `words` that are not flags, naming the flagfile of the first one
    when it is a line of one (a forgotten `--` there reads as a stray word)."""
    message = f"unexpected arguments: {' '.join(words)}"
    for path, _ in _flagfiles(argv):
        with open(path) as lines:
            if any(line.strip() == words[0] for line in lines):
                return (f"{message} ({words[0]} is a line of the flagfile {path}, where each "
                        "line is one --flag=value)")
    return message


def _named_flagfiles(path):
    """The names of the `--flagfile=` lines of the flagfile PATH, in order."""
    with open(path) as lines:
        matches = [_FLAGFILE.match(line.strip()) for line in lines]
    return [match.group(1).strip() for match in matches if match]


def run(main, flags_parser=app.parse_flags_with_usage):
    """app.run(main), with the errors our code raises for the user printed as one line, and
    words that are not flags refused before `main` runs (a forgotten `--`, a stray quote).
    `flags_parser`: as app.run's, e.g. one that leaves unknown flags to Apache Beam; `main`
    then gets them in its argv and checks them itself."""
    def parse_flags(argv):
        unreachable = unreachable_nested_flagfile(argv)
        if unreachable:
            presets = (f", and the bundled presets expect the repository root ({_REPO})"
                       if os.path.isdir(os.path.join(_REPO, "configs")) else "")
            sys.exit(f"{_program_name()}: error: {unreachable[0]} names "
                     f"--flagfile={unreachable[1]}, which does not exist from this folder "
                     f"({os.getcwd()}): flagfiles are read relative to the folder a command "
                     f"runs in{presets}")
        return flags_parser(argv)

    def main_with_user_errors(argv):
        try:
            if len(argv) > 1 and flags_parser is app.parse_flags_with_usage:
                raise app.UsageError(_unexpected(argv[1:], sys.argv))
            return main(argv)
        except app.UsageError as error:  # absl would print the whole --helpshort first
            sys.exit(f"{_program_name()}: error: {error} (--helpshort lists the flags)")
        except (UserError, ValueError, OSError) as error:
            if not (isinstance(error, UserError) or raised_by_us(error)):
                raise
            logging.debug("Traceback of the error below", exc_info=True)
            sys.exit(f"{_program_name()}: error: {error}")

    app.run(main_with_user_errors, flags_parser=parse_flags)


def _program_name():
    """launch.NAME under `python -m`, else the script's file name."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec else os.path.basename(sys.argv[0])
