"""Partners and their terminals. A terminal's secret is returned once and stored sealed."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.clock import utcnow
from mall.db import add_unique, unique_or
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.partners.models import PARTNER_CATEGORIES, PARTNER_NAME_KEY, Partner, Terminal
from mall.regions.models import Region
from mall.security.crypto import sealer
from mall.security.masking import mask_phone
from mall.users.models import User
from mall.users.scope import can_see, ensure_visible


def create_partner(
    session: Session,
    *,
    township: Region,
    name: str,
    category: str,
    address: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    accepts_integrity: bool = True,
    accepts_points: bool = False,
) -> Partner:
    if township.kind != "township" or township.county_id is None:
        raise ValidationFailed(details={"fields": {"township_id": ["must be a township"]}})
    if category not in PARTNER_CATEGORIES:
        raise ValidationFailed(details={"fields": {"category": list(PARTNER_CATEGORIES)}})
    name = name.strip()
    if not name:
        raise ValidationFailed(details={"fields": {"name": ["required"]}})
    _ensure_name_free(session, township.id, name)
    partner = Partner(
        county_id=township.county_id,
        township_id=township.id,
        name=name,
        category=category,
        address=address,
        contact_name=contact_name,
        contact_phone_masked=mask_phone(contact_phone) if contact_phone else "",
        contact_phone_enc=sealer().seal(contact_phone, "phone") if contact_phone else None,
        accepts_integrity=accepts_integrity,
        accepts_points=accepts_points,
        active=True,
    )
    # The check above answers the common case; two requests creating the same partner at once
    # both pass it, and the unique key refuses the second: a Conflict, not a 500.
    add_unique(session, partner, name_taken(), only=PARTNER_NAME_KEY)
    return partner


def name_taken() -> Conflict:
    return Conflict(details={"fields": {"name": ["a partner of this name exists in the township"]}})


def _ensure_name_free(
    session: Session, township_id: int, name: str, *, other_than: int | None = None
) -> None:
    stmt = select(Partner.id).where(Partner.township_id == township_id, Partner.name == name)
    if other_than is not None:
        stmt = stmt.where(Partner.id != other_than)
    if session.scalar(stmt.limit(1)) is not None:
        raise name_taken()


# What an admin may change on a partner (its township and county never change: the ledger's
# payables and every statement hang on them). An empty contact_phone leaves the phone as is.
PARTNER_EDITABLE = (
    "name",
    "category",
    "address",
    "contact_name",
    "contact_phone",
    "accepts_integrity",
    "accepts_points",
    "active",
    "settlement",
)
_AUDITED = (
    "name",
    "category",
    "address",
    "contact_name",
    "contact_phone_masked",
    "accepts_integrity",
    "accepts_points",
    "active",
)


def partner_snapshot(partner: Partner) -> dict[str, Any]:
    """What the audit log keeps of a partner (the phone masked, never sealed values)."""
    out: dict[str, Any] = {k: getattr(partner, k) for k in _AUDITED}
    out["settlement"] = dict(partner.settlement or {})
    return out


def update_partner(
    session: Session, actor: User, partner: Partner, changes: dict[str, Any]
) -> Partner:
    """Edit a partner: only PARTNER_EDITABLE fields, audited with before and after. Flushes
    only; the caller commits."""
    ensure_visible(actor, partner)
    unknown = sorted(set(changes) - set(PARTNER_EDITABLE))
    if unknown:
        raise ValidationFailed(details={"fields": {k: ["not editable"] for k in unknown}})
    values = dict(changes)
    if "name" in values:
        values["name"] = str(values["name"]).strip()
        if not values["name"]:
            raise ValidationFailed(details={"fields": {"name": ["required"]}})
        _ensure_name_free(session, partner.township_id, values["name"], other_than=partner.id)
    if "category" in values and values["category"] not in PARTNER_CATEGORIES:
        raise ValidationFailed(details={"fields": {"category": list(PARTNER_CATEGORIES)}})
    before = partner_snapshot(partner)
    phone = str(values.pop("contact_phone", "") or "").strip()
    if phone:
        partner.contact_phone_masked = mask_phone(phone)
        partner.contact_phone_enc = sealer().seal(phone, "phone")
    with unique_or(session, Partner, name_taken(), only=PARTNER_NAME_KEY):
        for key, value in values.items():
            setattr(partner, key, dict(value or {}) if key == "settlement" else value)
    audit.record(
        session,
        actor=actor,
        action="partner.update",
        object_type="partner",
        object_id=partner.id,
        county_id=partner.county_id,
        township_id=partner.township_id,
        before=before,
        after=partner_snapshot(partner),
    )
    return partner


def _new_secret() -> str:
    return secrets.token_hex(32)  # 32 random bytes, as the contract requires


def create_terminal(session: Session, partner: Partner, name: str = "") -> tuple[Terminal, str]:
    """Returns the terminal and its secret; the secret is never retrievable again."""
    secret = _new_secret()
    terminal = Terminal(
        terminal_id="T" + secrets.token_hex(8).upper(),
        partner_id=partner.id,
        township_id=partner.township_id,
        name=name or partner.name,
        secret_enc=sealer().seal(secret, "terminal"),
        active=True,
    )
    session.add(terminal)
    session.flush()
    return terminal, secret


def rotate_terminal_secret(session: Session, terminal: Terminal) -> str:
    secret = _new_secret()
    terminal.secret_enc = sealer().seal(secret, "terminal")
    terminal.secret_rotated_at = utcnow()
    session.flush()
    return secret


def terminal_secret(terminal: Terminal) -> str:
    return sealer().open(terminal.secret_enc, "terminal")


def set_terminal_active(session: Session, terminal: Terminal, active: bool) -> None:
    terminal.active = active
    session.flush()


MAX_PARTNER_ID = 2**31 - 1  # partners.id and terminals.id are 32-bit integers


def visible_partner(session: Session, user: User, partner_id: int) -> Partner:
    """The partner if `user` may see it, else 404: staff by region, a cashier only its own."""
    partner = session.get(Partner, partner_id) if 0 < partner_id <= MAX_PARTNER_ID else None
    if partner is None:
        raise NotFound()
    if user.role == "cashier":
        if partner.id != user.partner_id:
            raise NotFound()
    elif not can_see(user, county_id=partner.county_id, township_id=partner.township_id):
        raise NotFound()
    return partner


def visible_terminal(session: Session, user: User, terminal_pk: int) -> tuple[Terminal, Partner]:
    """A terminal and its partner, if `user` may see the partner; else 404."""
    terminal = session.get(Terminal, terminal_pk) if 0 < terminal_pk <= MAX_PARTNER_ID else None
    if terminal is None:
        raise NotFound()
    return terminal, visible_partner(session, user, terminal.partner_id)
