"""The background projection thread's scheduling, with a stand-in step and no store."""

from __future__ import annotations

import threading

from reference_impl.receiver.projector import Projector


def test_a_callback_logged_during_an_empty_step_is_still_projected() -> None:
    """A step can find nothing (a read had caught up) while a new callback is being logged; the
    thread must still come back for that callback instead of sleeping until the next one."""
    done = threading.Event()
    steps: list[int] = []

    def step() -> int:
        steps.append(1)
        if len(steps) == 1:
            projector.recorded()
            return 0
        done.set()
        return 1

    projector = Projector(step, quiet=0.01)
    projector.recorded()
    assert done.wait(5), "the callback logged during the empty step was never projected"
    projector.stop()


def test_a_burst_is_projected_once_quiet_and_a_long_one_at_the_backlog_limit() -> None:
    """Quiet period and backlog bound: the two promises the receiver documents."""
    projected = threading.Event()
    projector = Projector(lambda: projected.set() or 1, quiet=60, max_backlog=3)
    projector.recorded()
    projector.recorded()
    assert not projected.wait(0.2), "stepped before the quiet period or the backlog limit"
    projector.recorded()
    assert projected.wait(5), "a full backlog must be projected at once"
    projector.stop()
