"""What names a run in every report: the bounceback version, and how a failure is replayed."""

from __future__ import annotations

from importlib import metadata

REPLAY_LIMIT = 4000
"""Longer curl lines (a 1000-event batch is 170 KB) stay out of the terminal; reports keep them."""


def bounceback_version() -> str:
    """The installed bounceback's version, so a reader can run the same checks again."""
    try:
        return metadata.version("bounceback")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"
