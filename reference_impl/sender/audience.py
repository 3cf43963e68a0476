"""Reading a campaign's audience: recipients from a CSV file, as exported by most tools.

The `email` column when a header row names one (any letter case), else the first column; blank
rows and blank cells are skipped. Addresses are not validated here: a malformed one is the
campaign's `SMTP invalid email ID` for that recipient, so one bad row never stops a send.
"""

from __future__ import annotations

import csv
from pathlib import Path

from reference_impl.errors import PlatformError

__all__ = ["AudienceError", "read_audience"]

EMAIL_COLUMN = "email"


class AudienceError(PlatformError, ValueError):
    """The audience file cannot be read as UTF-8 CSV; the message names the file and why."""


def read_audience(path: Path) -> list[str]:
    """Recipients from a CSV file: the `email` column if a header names one, else column one."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except OSError as exc:
        raise AudienceError(f"audience {path}: cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise AudienceError(f"audience {path}: is not UTF-8 (byte {exc.start})") from exc
    except csv.Error as exc:
        raise AudienceError(f"audience {path}: is not CSV: {exc}") from exc
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    if EMAIL_COLUMN in header:
        column = header.index(EMAIL_COLUMN)
        return [
            row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()
        ]
    return [row[0].strip() for row in rows if row[0].strip()]
