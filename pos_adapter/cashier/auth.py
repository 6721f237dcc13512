"""Cashier sessions and the partner's web terminal.

The cashier logs in with a staff account of role `cashier` (lockout and throttle of
`mall.auth`). The cashier's state lives in the Flask session under its own keys, beside and
independent of the admin session's (`staff_*`) and the farmer pages' (`farmer_*`), so
logging in or out here leaves those alone.

Payments made here carry the partner's web terminal, a `Terminal` row named 网页收银台
created on the first cashier login: statements and reconciliation then treat the browser
like any other till. Its HMAC secret is never shown and never used (this blueprint calls
the services directly, inside the cashier's session).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, session
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.auth.services import session_version
from mall.clock import utcnow
from mall.db import lock_row
from mall.errors import Forbidden
from mall.partners.models import Partner, Terminal
from mall.partners.services import create_terminal
from mall.users.models import User

WEB_TERMINAL_NAME = "网页收银台"
SESSION_USER_ID = "cashier_uid"
SESSION_VERSION = "cashier_sv"
SESSION_LOGIN_AT = "cashier_at"
SESSION_TERMINAL = "cashier_tid"
_KEYS = (SESSION_USER_ID, SESSION_VERSION, SESSION_LOGIN_AT, SESSION_TERMINAL)
DEFAULT_CASHIER_SESSION_SECONDS = 12 * 3600  # one long shift


@dataclass(frozen=True)
class CashierContext:
    user: User
    partner: Partner
    terminal: Terminal


def web_terminal(db_session: Session, partner: Partner) -> Terminal:
    """The partner's web terminal, created if absent. The partner row is locked first
    (PostgreSQL), so two first logins at once create one terminal, not two."""
    lock_row(db_session, partner)
    terminal = db_session.scalar(
        select(Terminal)
        .where(Terminal.partner_id == partner.id, Terminal.name == WEB_TERMINAL_NAME)
        .order_by(Terminal.id)
        .limit(1)
    )
    if terminal is None:
        terminal, _secret = create_terminal(db_session, partner, WEB_TERMINAL_NAME)
    return terminal


def cashier_context(db_session: Session, user: User) -> CashierContext:
    """Check that `user` may work the till now; refusals are `forbidden` with a reason."""
    if user.role != "cashier" or user.partner_id is None:
        raise Forbidden(details={"reason": "not_cashier"})
    partner = db_session.get(Partner, user.partner_id)
    if partner is None or not partner.active:
        raise Forbidden("partner_not_eligible", details={"reason": "partner_inactive"})
    terminal = web_terminal(db_session, partner)
    if not terminal.active:
        raise Forbidden("terminal_disabled")
    terminal.last_seen_at = utcnow()
    db_session.flush()
    return CashierContext(user, partner, terminal)


def start_cashier_session(ctx: CashierContext) -> None:
    end_cashier_session()
    session[SESSION_USER_ID] = ctx.user.id
    session[SESSION_VERSION] = session_version(ctx.user)
    session[SESSION_LOGIN_AT] = int(utcnow().timestamp())
    session[SESSION_TERMINAL] = ctx.terminal.id


def end_cashier_session() -> None:
    for key in _KEYS:
        session.pop(key, None)


def _session_seconds() -> int:
    return int(current_app.config.get("CASHIER_SESSION_SECONDS", DEFAULT_CASHIER_SESSION_SECONDS))


def cashier_from_session(db_session: Session) -> CashierContext | None:
    """The cashier of a valid session, or None (and a stale session is dropped): the
    password changed, the account, partner or web terminal was disabled, or the shift ran
    longer than `CASHIER_SESSION_SECONDS`."""
    user_id, terminal_id = session.get(SESSION_USER_ID), session.get(SESSION_TERMINAL)
    if user_id is None:
        return None
    login_at = session.get(SESSION_LOGIN_AT)
    user = db_session.get(User, user_id) if isinstance(user_id, int) else None
    terminal = db_session.get(Terminal, terminal_id) if isinstance(terminal_id, int) else None
    partner = db_session.get(Partner, user.partner_id) if user and user.partner_id else None
    if (
        user is None
        or terminal is None
        or partner is None
        or not user.active
        or user.role != "cashier"
        or terminal.partner_id != partner.id
        or not terminal.active
        or not partner.active
        or not isinstance(login_at, int)
        or utcnow().timestamp() - login_at > _session_seconds()
        or session.get(SESSION_VERSION) != session_version(user)
    ):
        end_cashier_session()
        return None
    return CashierContext(user, partner, terminal)
