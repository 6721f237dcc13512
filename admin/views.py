"""The admin blueprint with every page registered on it: what the composition root mounts.
The blueprint, its hooks and login are in admin.blueprint; the pages in admin.pages."""

from admin import pages  # noqa: F401  (registers every page on `bp`)
from admin.blueprint import bp

__all__ = ["bp"]
