"""The cashier blueprint with every page registered on it: what the composition root mounts
(the till's pages in pos_adapter.cashier.views, the pickup of goods reserved online in
pos_adapter.cashier.pickup)."""

from pos_adapter.cashier import pickup  # noqa: F401  (registers the pickup pages on `bp`)
from pos_adapter.cashier.views import bp

__all__ = ["bp"]
