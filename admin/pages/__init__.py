"""The admin pages, one module per area; importing this package registers their routes on
the admin blueprint (admin.blueprint.bp)."""

from . import (  # noqa: F401  (imported for their routes)
    audit_users,
    dashboard,
    households,
    partners,
    points,
    ratings,
    regions,
    settlement,
    villages,
)
