"""One error type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class PipelineError(Exception):
    """A problem the user can fix: the message names the file, node or option at fault."""

    exit_code = 2


class ShapeOutOfProfileError(PipelineError):
    """An input shape lies outside the optimization profile the engine was built with."""
