"""vla_ros.util.names: the repeated names of a joint-name list."""

from __future__ import annotations

from vla_ros.util.names import repeated_names


def test_repeated_names_are_each_named_once_and_sorted() -> None:
    assert repeated_names(["j3", "j1", "j3", "j2", "j1", "j3"]) == ["j1", "j3"]
    assert repeated_names(("a", "b", "c")) == []
    assert repeated_names([]) == []
