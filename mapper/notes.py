"""One collector for what a mapping left out or changed: names and counts, never values."""

from __future__ import annotations

INVALID_VALUES = "invalid values left out"


class Notes:
    """Items grouped under a heading (`properties left out: a; b`), in the order first seen.

    Every part of the mapper writes here, so a plan's notes read the same whichever table,
    transformer or strategy produced them.
    """

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        self._groups: dict[str, list[str]] = {}

    def add(self, heading: str, *items: str) -> None:
        """Items under `heading`; nothing when there are none."""
        if items:
            self._groups.setdefault(heading, []).extend(items)

    def say(self, line: str) -> None:
        """A line of its own (a count, a strategy applied)."""
        self._groups.setdefault(line, [])

    def invalid(self, item: str) -> None:
        """A value that broke a closed schema (`order_id must be a string`)."""
        self.add(INVALID_VALUES, item)

    @property
    def invalid_values(self) -> tuple[str, ...]:
        return tuple(self._groups.get(INVALID_VALUES, ()))

    def summary(self) -> tuple[str, ...]:
        """The lines as a log may hold them: each heading with how many names it had (names
        are the sender's own text: a property name can be an email address)."""
        if not self._groups:
            return ()
        return tuple(
            f"{heading}: {len(items)}" if items else heading
            for heading, items in self._groups.items()
        )

    def lines(self) -> tuple[str, ...]:
        if not self._groups:  # the usual case
            return ()
        return tuple(
            f"{heading}: {'; '.join(items)}" if items else heading
            for heading, items in self._groups.items()
        )
