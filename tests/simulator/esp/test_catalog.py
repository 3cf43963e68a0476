"""The catalog of shipped files: found by name through the installed packages, unknown names
answered with the list and the closest name, PROTOCOL.md readable by section."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.esp.catalog import (
    KINDS,
    PLAN,
    PROVIDER,
    SCENARIO,
    SCENARIO_KINDS,
    VENDOR,
    ProtocolSectionError,
    UnknownShipped,
    find_shipped,
    protocol_sections,
    protocol_text,
    resolve_path,
    shipped,
)
from simulator.esp.scenario import ScenarioError, load_scenario


def test_every_shipped_file_has_a_kind_and_a_one_line_description() -> None:
    """`bounceback scenarios` lists each file with one line: from `description` or a comment."""
    entries = shipped()
    assert {entry.kind for entry in entries} == set(KINDS)
    for entry in entries:
        assert entry.description, entry.name
        assert "\n" not in entry.description, entry.name


def test_kinds_follow_the_folder_a_file_ships_in() -> None:
    kinds = {entry.name: entry.kind for entry in shipped()}
    assert kinds["smoke"] == SCENARIO
    assert kinds["certification/fake-esp"] == PLAN
    assert kinds["certification/vendors/well-behaved"] == VENDOR
    assert kinds["certification/providers/fake-esp"] == PROVIDER
    assert kinds["examples/providers"] == PROVIDER, "the provider examples ship too"


def test_description_is_the_first_sentence_of_a_multi_line_description() -> None:
    entry = find_shipped("batch-limit", (SCENARIO,))
    assert entry.description == (
        "The 1000-event limit: a batch of exactly 1000 events, then one of 1001."
    )


def test_a_file_without_description_key_lists_its_first_comment_line() -> None:
    provider = find_shipped("certification/providers/fake-esp", (PROVIDER,))
    assert provider.description == provider.text().splitlines()[0].lstrip("# ")


@pytest.mark.parametrize(
    "spelling",
    ["certification/vendors/well-behaved", "scenarios/certification/vendors/well-behaved.toml"],
)
def test_a_shipped_name_is_also_accepted_in_its_checkout_spelling(spelling: str) -> None:
    """The README's checkout paths keep working from an empty folder."""
    assert load_scenario(spelling).name == "well-behaved"


def test_a_file_in_the_current_folder_wins_over_a_shipped_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "smoke").write_text('name = "mine"\n[outcomes]\ndelivered = 1.0\n')
    monkeypatch.chdir(tmp_path)
    assert load_scenario("smoke").name == "mine"


def test_unknown_scenario_name_suggests_the_closest_and_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario("smok")
    message = str(error.value)
    assert "did you mean 'smoke'?" in message
    for entry in shipped(SCENARIO_KINDS):
        assert entry.name in message
    assert "certification/fake-esp" not in message, "a plan is not offered as a scenario"


def test_the_last_part_of_a_name_alone_suggests_the_full_name() -> None:
    with pytest.raises(UnknownShipped, match="did you mean 'certification/vendors/well-behaved'"):
        find_shipped("well-behaved", SCENARIO_KINDS)


def test_a_plan_given_as_scenario_is_refused_with_where_it_belongs() -> None:
    with pytest.raises(UnknownShipped, match="bounceback certify certification/fake-esp"):
        resolve_path("certification/fake-esp", SCENARIO_KINDS)


def test_a_missing_absolute_path_is_a_missing_file_not_a_name(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(str(tmp_path / "nope.toml"))


def test_shipped_plan_resolves_to_a_file_next_to_its_provider() -> None:
    """A plan names its provider relative to its own folder, so the plan must be a real file."""
    plan = resolve_path("certification/fake-esp", (PLAN,))
    assert plan.is_file()
    assert (plan.parent / "providers" / "fake-esp.toml").is_file()


def test_protocol_sections_are_numbered_one_to_seven() -> None:
    assert [number for number, _ in protocol_sections()] == [str(n) for n in range(1, 8)]


@pytest.mark.parametrize("section", ["4", "CB-4.2", "4.2"])
def test_protocol_section_prints_that_section_alone(section: str) -> None:
    """A failure quoting "PROTOCOL.md section 4" is answered by `bounceback protocol 4`."""
    text = protocol_text(section)
    assert text.startswith("## 4. Responses\n")
    assert "## 5." not in text and "## 3." not in text


def test_protocol_without_section_is_the_whole_reading() -> None:
    text = protocol_text()
    assert text.startswith("# ")
    assert all(f"## {number}. {title}" in text for number, title in protocol_sections())


def test_unknown_protocol_section_lists_the_sections() -> None:
    with pytest.raises(ProtocolSectionError, match="4 Responses"):
        protocol_text("9")
