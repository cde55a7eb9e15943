"""Tee everything printed to the console into ``<output>/log.txt``."""

import os
import os.path as osp
import sys
import time
from typing import TextIO

from .tools import mkdir_if_missing

__all__ = ["Logger", "setup_logger"]


class Logger:
    """A ``sys.stdout`` replacement writing to the console and to a file (opened for appending).

    Args:
        fpath: path of the log file (created with its folder if missing); None = console only.
        console: stream to echo to (default: the current ``sys.stdout``).
    """

    def __init__(self, fpath: str | None = None, console: TextIO | None = None) -> None:
        self.console = console if console is not None else sys.stdout
        self.file = None
        if fpath is not None:
            mkdir_if_missing(osp.dirname(fpath))
            # line-buffered: a killed run keeps every line it printed (parsers read the log)
            self.file = open(fpath, "a", buffering=1)

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def write(self, msg: str) -> None:
        self.console.write(msg)
        if self.file is not None:
            self.file.write(msg)

    def flush(self) -> None:
        self.console.flush()
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def isatty(self) -> bool:
        return self.console.isatty()

    def __getattr__(self, name: str) -> object:
        # anything else a stream has (encoding, errors, fileno, ...) comes from the console
        if name in ("console", "file"):
            raise AttributeError(name)
        return getattr(self.console, name)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def setup_logger(output: str | None = None) -> None:
    """Send ``sys.stdout`` to the console and to a log file.

    ``output`` is a file path ending in ``.txt`` or ``.log``, or a folder (the log is
    ``<output>/log.txt``). An existing log is never overwritten: the new run is appended after a
    timestamped separator line, so a resumed run continues the log of the run it resumes. Calling
    it again in the same process closes the previous log file first.
    """
    if output is None:
        return
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = osp.join(output, "log.txt")

    console = sys.stdout
    if isinstance(console, Logger):
        console.close()
        console = console.console

    appending = osp.exists(fpath) and osp.getsize(fpath) > 0
    logger = Logger(fpath, console=console)
    if logger.file is not None and appending:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        logger.file.write(f"\n===== {stamp}: new run, appended to this log =====\n")
    sys.stdout = logger
