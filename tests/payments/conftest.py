"""The payments tests share the POS fixtures (a partner, terminal, funded household)."""

from tests.pos_adapter.conftest import other_till, till, world

__all__ = ["other_till", "till", "world"]
