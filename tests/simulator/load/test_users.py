"""The Locust users keep their process's event loop free: a worker whose loop stalls sends no
heartbeat, and Locust's master gives it up as missing and ends the run with nothing posted."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

if importlib.util.find_spec("locust") is None:
    pytest.skip("locust is not installed: run `make install`", allow_module_level=True)

# Run in a child: importing Locust patches the whole process with gevent.
PROBE = textwrap.dedent(
    """
    import gevent
    from simulator.load import users

    ticks = []
    drawn = []

    def tick():
        while not drawn:
            ticks.append(1)
            gevent.sleep(0.01)

    def draw():
        drawn.append(users.refusable_pool())

    ticker = gevent.spawn(tick)
    gevent.sleep(0)  # the ticker starts before the draw
    started = len(ticks)
    gevent.spawn(draw).join()
    ticker.join()
    print(len(ticks) - started, len(drawn[0]))
    """
)


def test_drawing_the_refusable_pool_leaves_the_event_loop_running() -> None:
    """Seen as a flake of the distributed load test (2 runs in 8 on a loaded machine): the
    Hypothesis draws ran on gevent's loop. The loop must tick while the pool is drawn."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    ticks, drawn = map(int, probe.stdout.split())
    assert drawn > 0, "a pool was drawn"
    assert ticks > 0, "the loop ran other greenlets (the heartbeat) during the draw"
