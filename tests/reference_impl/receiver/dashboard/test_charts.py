"""The report charts' geometry (`dashboard/charts.py`)."""

from __future__ import annotations

from reference_impl.receiver.dashboard.charts import outcome_bars, shown_time, timeline_columns


def test_the_five_outcomes_always_show_and_scale_to_the_longest() -> None:
    counts = {"delivered": 8, "hard_bounce": 2, "soft_bounce": 0, "spam": 1, "unsubscribed": 4}
    bars = outcome_bars({**counts, "bounce": 0, "send_failed": 0})
    assert [b.kind for b in bars] == list(counts)
    assert [b.fraction for b in bars] == [1.0, 0.25, 0.0, 0.125, 0.5]


def test_other_counters_show_only_when_not_zero() -> None:
    bars = outcome_bars({"delivered": 0, "send_failed": 3, "bounce": 0})
    assert [b.kind for b in bars][-1] == "send_failed"
    assert "bounce" not in [b.kind for b in bars]
    assert {b.fraction for b in bars if b.count == 0} == {0.0}


def test_an_empty_report_draws_empty_bars_without_dividing_by_zero() -> None:
    assert {b.fraction for b in outcome_bars({})} == {0.0}


def test_timeline_columns_scale_to_the_busiest() -> None:
    timeline = {
        "start": 0.0,
        "width": 1.0,
        "buckets": [{"at": 0.0, "counts": {"spam": 2, "delivered": 2}}, {"at": 1.0, "counts": {}}],
    }
    columns = timeline_columns(timeline)
    assert [(c.total, c.fraction) for c in columns] == [(4, 1.0), (0, 0.0)]
    assert [(s.kind, s.bottom, s.height) for s in columns[0].segments] == [
        ("delivered", 0.0, 0.5),
        ("spam", 0.5, 0.5),
    ], "stacked in the bars' order"
    assert columns[0].at == "1970-01-01 00:00:00"


def test_times_are_shown_in_utc_to_the_second() -> None:
    assert shown_time(1730714617.9) == "2024-11-04 10:03:37"
    assert shown_time(None) == ""
