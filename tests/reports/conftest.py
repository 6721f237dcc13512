"""Report fixtures: the settlement worked day plus issuance, a void and an expiry."""

from tests.pos_adapter.conftest import world
from tests.settlement.conftest import worked_day

__all__ = ["worked_day", "world"]
