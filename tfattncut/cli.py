"""How the launch/*.py entry points start: `cli.run(main)` instead of `app.run(main)`.

A user's mistake (a missing folder, a bad value, flags that contradict each other) is
reported by our own code as a ValueError or OSError whose message names the flag or file;
it is printed as one line, `launch.NAME: error: MESSAGE`, with exit status 1, instead of a
traceback. Errors raised inside TensorFlow, Keras or any other library keep their traceback:
those are the program's problem, and the traceback is what a bug report needs. Bad flag
values are refused earlier still, while parsing (absl's FATAL flags error).
"""
import os
import sys

from absl import app, logging

# Our code: the tfattncut package and the launch/ entry points next to it.
_OURS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name)
              + os.sep for name in ("tfattncut", "launch"))


def raised_by_us(error):
    """Whether the innermost frame that raised `error` is in tfattncut/ or launch/."""
    trace = error.__traceback__
    if trace is None:
        return False
    while trace.tb_next is not None:
        trace = trace.tb_next
    return os.path.abspath(trace.tb_frame.f_code.co_filename).startswith(_OURS)


def run(main, flags_parser=app.parse_flags_with_usage):
    """app.run(main), with the errors our code raises for the user printed as one line.
    `flags_parser`: as app.run's (e.g. to leave unknown flags to Apache Beam)."""
    def main_with_user_errors(argv):
        try:
            return main(argv)
        except (ValueError, OSError) as error:
            if not raised_by_us(error):
                raise
            logging.debug("Traceback of the error below", exc_info=True)
            sys.exit(f"{_program_name()}: error: {error}")

    app.run(main_with_user_errors, flags_parser=flags_parser)


def _program_name():
    """launch.NAME under `python -m`, else the script's file name."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec else os.path.basename(sys.argv[0])
