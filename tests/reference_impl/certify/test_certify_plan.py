"""Plans load with every problem named by key; probes get metas of exactly the asked length."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.certify.plan import PlanError, load_plan, parse_plan
from reference_impl.certify.probes import ProbeMetaError, probe_meta
from reference_impl.protocol.meta import parse_meta

PLANS = Path(__file__).resolve().parents[3] / "scenarios" / "certification"

MINIMAL = {
    "name": "p",
    "callback_url": "http://127.0.0.1:1/cb",
    "probe": [{"id": "a", "to": "bounce@x.test", "expect": "hard_bounce"}],
}


@pytest.mark.parametrize("path", sorted(PLANS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_plans_load_and_cover_long_metas(path: Path) -> None:
    plan = load_plan(path)
    assert plan.probes
    if plan.name == "fake-esp":
        lengths = [p.meta_length or 0 for p in plan.probes]
        assert any(n > 998 for n in lengths) and any(78 < n <= 998 for n in lengths)
        assert {p.expect for p in plan.probes} == {
            "hard_bounce",
            "soft_bounce",
            "spam",
            "unsubscribed",
            "delivered",
        }
        assert {p.respond for p in plan.probes} == {None, "500", "slow"}


def test_invalid_plan_reports_every_problem_by_key() -> None:
    data = {
        "name": "",
        "callback_url": "ftp://x",
        "deadline_seconds": -1,
        "colour": "blue",
        "probe": [
            {"id": "a", "to": "no-at-sign", "expect": "bounced"},
            {"id": "b", "to": "x@y.test", "expect": "delivered", "respond": "500"},
            {"id": "c", "to": "x@y.test", "expect": "spam", "meta_length": 0, "wat": 1},
        ],
    }
    with pytest.raises(PlanError) as caught:
        parse_plan(data, source="bad.toml")
    keys = {key for key, _ in caught.value.problems}
    assert keys >= {
        "name",
        "callback_url",
        "deadline_seconds",
        "colour",
        "probe[0].to",
        "probe[0].expect",
        "probe[1].respond",
        "probe[2].meta_length",
        "probe[2].wat",
    }
    assert "bad.toml" in str(caught.value) and "probe[0].expect" in str(caught.value)


def test_count_expands_into_numbered_probes_with_distinct_addresses() -> None:
    data = {
        **MINIMAL,
        "probe": [{"id": "bulk", "to": "b+{n}@x.test", "expect": "hard_bounce", "count": 12}],
    }
    plan = parse_plan(data)
    assert [p.id for p in plan.probes][:2] == ["bulk-01", "bulk-02"]
    assert len({p.to for p in plan.probes}) == 12


def test_duplicate_ids_and_two_500_probes_are_refused() -> None:
    probe = {"id": "a", "to": "b@x.test", "expect": "hard_bounce", "respond": "500"}
    with pytest.raises(PlanError) as caught:
        parse_plan({**MINIMAL, "probe": [probe, probe]})
    assert {k for k, _ in caught.value.problems} == {"probe id 'a'", "probe.respond"}


def test_unreadable_and_non_toml_files_are_plan_errors(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot be read"):
        load_plan(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ", encoding="utf-8")
    with pytest.raises(PlanError, match="not valid TOML"):
        load_plan(broken)


@given(length=st.integers(min_value=70, max_value=4000))
def test_probe_meta_has_exactly_the_asked_length_and_parses(length: int) -> None:
    meta = probe_meta(
        "bounce+long@x.test",
        account_id=1568798080,
        sent_at=1730714617,
        label="cert",
        message_id=-17005907,
        length=length,
    )
    assert len(meta) == length
    assert parse_meta(meta).email == "bounce+long@x.test"


def test_probe_meta_shorter_than_possible_is_refused_with_the_minimum() -> None:
    with pytest.raises(ProbeMetaError, match="at least"):
        probe_meta(
            "a@x.test", account_id=1, sent_at=1730714617, label="c", message_id=-1, length=20
        )
