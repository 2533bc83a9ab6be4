"""Sorted names for paginated listings: every task, every task of each family, every family.

A page is a bisection and a slice, O(log N + limit), whatever N; adding or removing a name is
O(log N) (``sortedcontainers.SortedList``; about 9 bytes per name per list, the strings are
shared with the prompt table's name map). A bulk load collects names and sorts them once
(``begin_bulk`` ... ``end_bulk``) instead of inserting them one by one.

Not thread-safe on its own: the prompt table calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Sequence

from sortedcontainers import SortedList


class NameIndex:
    def __init__(self) -> None:
        self.tasks: SortedList = SortedList()
        self.by_family: dict[str, SortedList] = {}
        self.families: SortedList = SortedList()
        self._pending: dict[str, list[str]] | None = None  # family -> names, during a bulk load

    # ---- tasks -------------------------------------------------------------------------------------
    def begin_bulk(self) -> None:
        self._pending = {}

    def end_bulk(self) -> None:
        pending, self._pending = self._pending or {}, None
        if not pending:
            return
        everything = [n for names in pending.values() for n in names]
        self.tasks = SortedList([*self.tasks, *everything])
        for family, names in pending.items():
            old = self.by_family.get(family)
            self.by_family[family] = SortedList([*old, *names] if old else names)

    def add_tasks(self, names: Sequence[str], families: Sequence[str]) -> None:
        if not names:
            return
        if self._pending is not None:
            if families.count(families[0]) == len(families):  # the usual chunk: one family
                self._pending.setdefault(families[0], []).extend(names)
            else:
                for name, family in zip(names, families):
                    self._pending.setdefault(family, []).append(name)
            return
        self.tasks.update(names)
        for name, family in zip(names, families):
            self._family_list(family).add(name)

    def remove_task(self, name: str, family: str) -> None:
        self.tasks.remove(name)
        names = self.by_family[family]
        names.remove(name)
        if not names:
            del self.by_family[family]

    def move_task(self, name: str, old_family: str, new_family: str) -> None:
        if old_family != new_family:
            self.by_family[old_family].remove(name)
            if not self.by_family[old_family]:
                del self.by_family[old_family]
            self._family_list(new_family).add(name)

    def family_size(self, family: str) -> int:
        names = self.by_family.get(family)
        return len(names) if names is not None else len((self._pending or {}).get(family, ()))

    def some_tasks_of(self, family: str, k: int) -> list[str]:
        names = self.by_family.get(family)
        return list(names.islice(0, k)) if names is not None else []

    def _family_list(self, family: str) -> SortedList:
        names = self.by_family.get(family)
        if names is None:
            names = self.by_family[family] = SortedList()
        return names

    # ---- pages -------------------------------------------------------------------------------------
    def task_page(self, after: str | None, limit: int, family: str | None = None) -> tuple[list[str], bool]:
        """Up to ``limit`` task names after ``after`` (exclusive), sorted; and whether more follow."""
        names = self.tasks if family is None else self.by_family.get(family, SortedList())
        return _page(names, after, limit)

    def family_page(self, after: str | None, limit: int) -> tuple[list[str], bool]:
        return _page(self.families, after, limit)


def _page(names: SortedList, after: str | None, limit: int) -> tuple[list[str], bool]:
    start = 0 if after is None else names.bisect_right(after)
    page = list(names.islice(start, start + limit + 1))
    return page[:limit], len(page) > limit
