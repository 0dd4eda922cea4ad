"""The command line's one-line errors (ground floor: imports nothing of the package).

:data:`USER_ERRORS` are what input checks raise for bad input; :func:`error_line` writes one of
them as ``chaosrnn <command>: error: <message>``; :func:`check_data_dir` refuses a bad
``$CHAOSRNN_DATA_DIR`` before anything runs."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["USER_ERRORS", "check_data_dir", "error_line"]

#: what a command's input checks raise for bad input (json.JSONDecodeError is a ValueError;
#: PermissionError, FileNotFoundError, IsADirectoryError, … are OSErrors): caught at the
#: command line while the inputs are checked, before any notebook or training runs, and
#: reported as one line with exit status 2. Anything raised later keeps its traceback.
USER_ERRORS = (ValueError, KeyError, OSError)


def error_line(command: str, err: BaseException) -> str:
    """``chaosrnn <command>: error: <message>`` on one line."""
    if isinstance(err, KeyError) and err.args:
        message = str(err.args[0])
    elif isinstance(err, OSError) and err.strerror and err.filename is not None:
        message = f"{err.filename}: {err.strerror}"
    else:
        message = str(err) or type(err).__name__
    return f"chaosrnn {command}: error: {' '.join(message.split())}"


def check_data_dir() -> None:
    """Refuse a ``$CHAOSRNN_DATA_DIR`` that is not a folder (the loader would fall back to the
    other folders without a word)."""
    env = os.environ.get("CHAOSRNN_DATA_DIR")
    if env and not Path(env).is_dir():
        raise NotADirectoryError(f"CHAOSRNN_DATA_DIR={env} is not a folder: unset it or point "
                                 "it at the folder of the authors' data files (data/README.md)")
