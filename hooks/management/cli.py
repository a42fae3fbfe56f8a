"""What the engine's management commands share: argument errors as one line and exit
status 2 (argparse prints its whole usage first, and an error raised in an argument's
type is a traceback), quiet engine logs, and a progress bar for long work."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandParser
from tqdm import tqdm


class OneLineErrors(CommandParser):
    def error(self, message: str):
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message} (--help shows the usage)\n")
        super().error(message)  # called from code: CommandError


def one_line_errors(parser: CommandParser) -> CommandParser:
    """The command's own parser too (its subcommands get the class from it)."""
    parser.__class__ = OneLineErrors
    return parser


@contextmanager
def quiet_logs(verbosity: int, *names: str) -> Iterator[None]:
    """Below -v 2, the engine's INFO lines stay out of a command's output: the command
    says what happened itself (warnings and errors still show)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    if verbosity < 2:
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class Progress:
    """A progress bar on stderr (tqdm) for work done in batches, fed `(done, total)`;
    shown on a terminal, or always with `force` (tests). `close()` ends its line."""

    def __init__(self, what: str, stream, *, force: bool = False):
        self.bar = tqdm(desc=what, unit=" rows", file=stream, disable=None if not force else False,
                        dynamic_ncols=True, leave=True)  # fmt: skip

    def __call__(self, done: int, total: int | None) -> None:
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()
