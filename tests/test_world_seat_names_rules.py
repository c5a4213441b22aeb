"""world.seats.sanitize_agent_name, rule by rule (its docstring; the name goes into
trajectory file names, reference netsecgame.md §3.7): letters, digits, ``_`` and ``-``
only, runs of ``_`` collapsed, outer ``_`` stripped, at most 200 characters, and the
fallback (``agent`` by default) for a name with nothing left."""

from __future__ import annotations

from world import sanitize_agent_name


def test_other_characters_become_one_underscore_per_run() -> None:
    """Every other character becomes ``_`` and a run of them (or of ``_``) collapses."""
    assert sanitize_agent_name("Alice & Bob!") == "Alice_Bob"
    assert sanitize_agent_name("a__b___c") == "a_b_c"
    assert sanitize_agent_name("x-1_y") == "x-1_y"


def test_only_underscores_are_stripped_from_the_ends() -> None:
    """Only ``_`` is stripped at the ends; letters there (``X`` included) stay."""
    assert sanitize_agent_name("__Xander_X__") == "Xander_X"
    assert sanitize_agent_name("-x-") == "-x-"


def test_names_are_cut_at_200_characters() -> None:
    """At most 200 characters: a 201-character name loses its last one."""
    assert sanitize_agent_name("a" * 200) == "a" * 200
    assert sanitize_agent_name("a" * 200 + "b") == "a" * 200


def test_a_name_with_nothing_left_takes_the_fallback() -> None:
    """Nothing left after cleaning: the fallback, ``agent`` unless one is given."""
    assert sanitize_agent_name("!!!") == "agent"
    assert sanitize_agent_name("") == "agent"
    assert sanitize_agent_name("???", "seat_1") == "seat_1"
