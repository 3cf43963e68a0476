"""A rich progress bar for a campaign: sent, failed, suppressed and remaining, per message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from reference_impl.sender.campaign import Result

__all__ = [
    "campaign_progress",
]


@contextmanager
def campaign_progress(
    console: Console, total: int, suppressed: int = 0
) -> Iterator[Callable[[Result], None]]:
    """Yields the `on_result` callback to hand to `Campaign`; the bar closes with the block.

    `total` counts the messages to send; `suppressed` the recipients skipped as unsubscribed.
    """
    counts = {"sent": 0, "failed": 0}
    columns = (
        TextColumn("[bold]sending"),
        BarColumn(),
        TextColumn("{task.fields[sent]} sent, [red]{task.fields[failed]} failed[/], "),
        TextColumn("{task.fields[suppressed]} suppressed, "),
        TextColumn("{task.fields[remaining]} remaining"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(
            "send", total=total, sent=0, failed=0, suppressed=suppressed, remaining=total
        )

        def on_result(result: Result) -> None:
            counts["failed" if result.error else "sent"] += 1
            done = counts["sent"] + counts["failed"]
            progress.update(task, completed=done, remaining=total - done, **counts)

        yield on_result
