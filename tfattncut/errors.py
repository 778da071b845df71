"""The errors a user can act on: a value, a file or a folder given to tfattncut that cannot
work. Their message is one line naming the flag, file or field, what was expected and what
was found; the command-line layer (`cli.run`) prints it as `launch.NAME: error: MESSAGE`
with exit status 1, without a traceback. Any other error is the program's problem and keeps
its traceback.

Each kind is also the built-in exception it always was (a bad value a ValueError, a file
that would be replaced a FileExistsError, ...), so `except ValueError` and the tests that
expect one go on working.
"""


class UserError(Exception):
    """An error whose message tells the user what to change."""


class InvalidValue(UserError, ValueError):
    """A flag, field or argument whose value cannot work (alone or with the others)."""


class ExistingPath(UserError, FileExistsError):
    """Writing would replace a file the user may still need."""


class NotAFolder(UserError, NotADirectoryError):
    """A path that must be (or lead to) a folder is a file."""


class IsAFolder(UserError, IsADirectoryError):
    """A path that must be a file is a folder."""
