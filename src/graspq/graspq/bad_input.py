"""Bad input to a command-line tool (a missing or malformed config, an unreadable checkpoint)
ends in argparse's one-line error naming it, exit status 2, not a traceback."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from graspq.config import ConfigError


@contextlib.contextmanager
def refused_by_name(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Turn the project's input errors raised inside the block into ``parser.error``. Only
    those: any other exception is a bug and keeps its traceback."""
    from graspq.learning.checkpoint import CheckpointError

    try:
        yield
    except (ConfigError, CheckpointError) as exc:
        parser.error(str(exc))
