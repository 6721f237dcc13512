"""Imports every model module of the domain so the metadata is complete (Alembic, `verify`,
tests); the composition root adds the channels' own tables (pos_adapter.models)."""

from mall.audit import models as audit_models
from mall.auth import models as auth_models
from mall.benefits import models as benefit_models
from mall.catalog import models as catalog_models
from mall.codes import models as code_models
from mall.daybook import models as daybook_models
from mall.entities import models as entity_models
from mall.ledger import models as ledger_models
from mall.partners import models as partner_models
from mall.payments import models as payment_models
from mall.points import models as points_models
from mall.ratings import models as rating_models
from mall.regions import models as region_models
from mall.reservations import models as reservation_models
from mall.settlement import models as settlement_models
from mall.subjects import logins as login_models
from mall.subjects import models as subject_models
from mall.upstream import models as upstream_models
from mall.users import models as user_models
from mall.villages import models as village_models

__all__ = [
    "audit_models",
    "auth_models",
    "benefit_models",
    "catalog_models",
    "code_models",
    "daybook_models",
    "entity_models",
    "ledger_models",
    "login_models",
    "partner_models",
    "payment_models",
    "points_models",
    "rating_models",
    "region_models",
    "reservation_models",
    "settlement_models",
    "subject_models",
    "upstream_models",
    "user_models",
    "village_models",
]
