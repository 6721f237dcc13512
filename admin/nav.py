"""The admin navigation. Each feature adds its pages with one `NAV_ITEMS.append(...)` line
(or an entry below), and the base template shows the ones the user's role may open."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: LazyString
    roles: tuple[str, ...] = ()  # empty: every staff role
    order: int = 100  # position in the menu, smallest first

    def visible_to(self, role: str) -> bool:
        return not self.roles or role in self.roles


NAV_ITEMS: list[NavItem] = [
    NavItem("admin.index", _l("首页"), order=0),
]
