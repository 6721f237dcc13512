"""Credit codes: signing and verifying them, one-use dynamic codes, integrity cards, card PINs.

A code is a compact JWS (PyJWT, Ed25519, header `{"alg":"EdDSA","kid":...}`) with claims
`v` (1), `k` ("d" dynamic / "c" card), `sub` (the household's opaque `ref`), `lvl` (level
code, absent when unrated), `jti`, `iat`, and `exp` (dynamic) or `card` (card serial). It
never carries an ID number, phone or name. Services take a Session and only flush.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from sqlalchemy import DateTime, String, Table, bindparam, delete, func, select
from sqlalchemy.orm import Session

from mall.auth.services import unlock_farmer_login
from mall.clock import as_aware, business_date, utcnow
from mall.codes import keys, policy, revocations
from mall.codes.models import IntegrityCard, UsedDynamicCode
from mall.db import insert_for_dialect, lock_row
from mall.driver_sql import DriverStatement, EntityLoader
from mall.entities.services import may_use_wallets
from mall.errors import Conflict, Forbidden, Gone, NotFound, Unprocessable, ValidationFailed
from mall.ledger.models import HOUSEHOLD_INTEGRITY, HOUSEHOLD_POINTS, Account
from mall.regions.models import Region
from mall.security.passwords import hash_pin, pin_is_acceptable, verify_pin
from mall.subjects.logins import end_household_sessions
from mall.subjects.models import CreditSubject

CODE_VERSION = 1
MAX_CODE_LENGTH = 1024  # real codes are about 280 characters; refuse to parse anything huge
_ALGORITHM = "EdDSA"
_JTI_BYTES = 9  # 72 random bits, 12 characters


# ---------------------------------------------------------------- signing


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime
    refresh_after: datetime


def effective_level(subject: CreditSubject, at: datetime) -> str | None:
    """The level a code may claim: none once the rating's validity has passed."""
    if subject.level_code is None:
        return None
    if subject.level_valid_until is not None and subject.level_valid_until < business_date(at):
        return None
    return subject.level_code


def _encode(claims: dict[str, Any], kid: str, private: Any) -> str:
    # typ=None drops the default "typ":"JWT" header: fewer bytes, a smaller QR.
    return jwt.encode(claims, private, algorithm=_ALGORITHM, headers={"kid": kid, "typ": None})


def sign_dynamic_code(
    session: Session,
    subject: CreditSubject,
    *,
    now: datetime | None = None,
    lifetime: int | None = None,
) -> IssuedCode:
    """A fresh dynamic code for the household's phone. May create the first signing key
    (flushed: the caller commits)."""
    if subject.status != "active":
        raise Forbidden("holder_suspended")
    now = now or utcnow()
    lifetime = lifetime or policy.code_lifetime_seconds()
    iat = int(now.timestamp())
    claims: dict[str, Any] = {"v": CODE_VERSION, "k": "d", "sub": subject.ref}
    level = effective_level(subject, now)
    if level is not None:
        claims["lvl"] = level
    claims |= {"jti": keys.b64url(secrets.token_bytes(_JTI_BYTES)), "iat": iat}
    claims["exp"] = iat + lifetime
    kid, private = keys.signing_key(session, now)
    expires_at = datetime.fromtimestamp(iat + lifetime, UTC)
    # Refresh a little before expiry so a code on screen is never stale when scanned.
    refresh_after = expires_at - timedelta(seconds=min(15, lifetime // 4))
    return IssuedCode(_encode(claims, kid, private), expires_at, refresh_after)


def card_code(session: Session, card: IntegrityCard) -> str:
    """The static code printed on `card`. Deterministic (Ed25519 signatures are), so a
    reprinted sheet shows the same QR while the household's level is unchanged."""
    subject = session.get(CreditSubject, card.subject_id)
    if subject is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound("holder_not_found")
    issued_at = as_aware(card.issued_at)
    claims: dict[str, Any] = {"v": CODE_VERSION, "k": "c", "sub": subject.ref}
    level = effective_level(subject, utcnow())
    if level is not None:
        claims["lvl"] = level
    claims |= {"jti": card.serial, "iat": int(issued_at.timestamp()), "card": card.serial}
    key = keys.verification_key(session, card.kid)
    if key is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound()
    return _encode(claims, card.kid, keys.private_key(key))


# ---------------------------------------------------------------- verifying


@dataclass(frozen=True)
class VerifiedCode:
    subject: CreditSubject
    kind: Literal["dynamic", "card"]
    jti: str
    kid: str
    level_code: str | None  # as claimed; the subject carries the current level
    issued_at: datetime
    expires_at: datetime | None  # dynamic codes only
    card: IntegrityCard | None  # card codes only
    # Read with the holder, for what the till shows (a payment locks and rereads the wallets).
    village_name: str | None = None
    available_integrity_fen: int = 0
    available_points: int = 0


_used_codes: Table = UsedDynamicCode.__table__  # type: ignore[assignment]


def _available(kind: str) -> Any:
    return func.coalesce(
        select(Account.posted_balance - Account.held_balance)
        .where(
            Account.township_id == CreditSubject.township_id,
            Account.subject_id == CreditSubject.id,
            Account.kind == kind,
        )
        .scalar_subquery(),
        0,
    )


# Built once: every scan runs it, and building a statement costs about as much as running it.
# One round trip for the holder, their village's name and what each wallet has available.
_HOLDERS = EntityLoader(CreditSubject)


def _holder_by_ref(*extra: Any) -> Any:
    return (
        select(
            *_HOLDERS.columns,
            Region.name,
            _available(HOUSEHOLD_INTEGRITY),
            _available(HOUSEHOLD_POINTS),
            *extra,
        )
        .outerjoin(Region, Region.id == CreditSubject.village_id)
        .where(CreditSubject.ref == bindparam("ref"))
    )


_HOLDER_BY_REF = DriverStatement(lambda _dialect: _holder_by_ref())


def _invalid(reason: str) -> Unprocessable:
    return Unprocessable("invalid_code", details={"reason": reason})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: object, max_len: int = 32) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_len


def _unverified_header(code: str) -> dict[str, Any]:
    """The JWS header, only to choose the key: jwt.decode then checks the whole token with
    it (the header is signed too, and decode refuses any token it cannot parse strictly).
    Read here because PyJWT's get_unverified_header parses and checks the entire token, as
    decode does again: 25-45 µs per code on the bench machine, against 4 µs for this."""
    segment = code.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise _invalid("malformed") from None
    if not isinstance(header, dict):
        raise _invalid("malformed")
    return header


def _decode(session: Session, code: object) -> tuple[keys.LoadedKey, dict[str, Any]]:
    """Signature and shape checks. Every failure is `invalid_code`."""
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH:
        raise _invalid("malformed")
    code = code.strip()
    header = _unverified_header(code)
    # Checked before any key is touched: `none`, HS256 (even "signed" with our public key
    # bytes) and every other algorithm are refused here, and again by `algorithms=`.
    if header.get("alg") != _ALGORITHM:
        raise _invalid("algorithm")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _is_text(kid, 16):
        raise _invalid("unknown_key")
    key = keys.verification_key(session, kid)
    if key is None:
        raise _invalid("unknown_key")
    try:
        claims = jwt.decode(
            code,
            key.public,
            algorithms=[_ALGORITHM],
            # Time claims are checked below against an injectable clock.
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidSignatureError:
        raise _invalid("signature") from None
    except jwt.DecodeError:
        raise _invalid("malformed") from None
    except (jwt.PyJWTError, ValueError, TypeError):  # PyJWT's own claim checks (`sub`...)
        raise _invalid("claims") from None
    if not (
        claims.get("v") == CODE_VERSION
        and claims.get("k") in ("d", "c")
        and _is_text(claims.get("sub"))
        and _is_text(claims.get("jti"))
        and _is_int(claims.get("iat"))
        and (claims.get("lvl") is None or _is_text(claims.get("lvl"), 16))
        and (claims["k"] != "d" or _is_int(claims.get("exp")))
        and (claims["k"] != "c" or _is_text(claims.get("card"), 16))
    ):
        raise _invalid("claims")
    return key, claims


def verify_code(  # noqa: C901 (to split by step, issue 20)
    session: Session, code: object, *, now: datetime | None = None, spend: bool = False
) -> VerifiedCode:
    """Who is this code for. Raises invalid_code (422), code_expired (410),
    holder_not_found (404) or holder_suspended (403). No side effect, unless `spend`: a
    dynamic code is then also spent on a payment (see `consume_dynamic_code`; after the
    checks above, code_already_used (409)), on PostgreSQL in the same round trip as the
    holder's read. A card code is not spent: the caller checks its PIN."""
    now = now or utcnow()
    ts = now.timestamp()
    skew = policy.allowed_skew_seconds()
    key, claims = _decode(session, code)
    if claims["iat"] > ts + skew:
        raise _invalid("not_yet_valid")
    kind: Literal["dynamic", "card"] = "dynamic" if claims["k"] == "d" else "card"
    expires_at = None
    if kind == "dynamic":
        if ts > claims["exp"] + skew:
            raise Gone("code_expired")
        if not key.verifies_dynamic_at(now):
            raise _invalid("key_retired")
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    spent: bool | None = None  # not spent in the holder's read
    if spend and kind == "dynamic" and session.get_bind().dialect.name == "postgresql":
        assert expires_at is not None
        params = {"ref": claims["sub"], **_spend_params(claims["jti"], expires_at)}
        holder = _HOLDER_SPENDING_CODE.first(session, params)
        if holder is not None:
            holder, spent = holder[:-1], bool(holder[-1])
    else:
        holder = _HOLDER_BY_REF.first(session, {"ref": claims["sub"]})
    if holder is None:
        raise NotFound("holder_not_found")
    subject: CreditSubject = _HOLDERS.attach(session, holder)
    village_name, available_integrity, available_points = holder[-3:]
    card = None
    if kind == "card":
        card = session.scalar(select(IntegrityCard).where(IntegrityCard.serial == claims["card"]))
        if (
            card is None
            or card.status != "active"
            or card.subject_id != subject.id
            or card.kid != key.kid
        ):
            raise _invalid("card_revoked")
    if subject.status != "active" or not _may_transact(session, subject):
        raise Forbidden("holder_suspended")
    if spend and kind == "dynamic":
        if spent is None:
            assert expires_at is not None
            consume_dynamic_code(session, claims["jti"], expires_at)
        elif not spent:
            raise Conflict("code_already_used")
    return VerifiedCode(
        subject=subject,
        kind=kind,
        jti=claims["jti"],
        kid=key.kid,
        level_code=claims.get("lvl"),
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=expires_at,
        card=card,
        village_name=village_name,
        available_integrity_fen=available_integrity,
        available_points=available_points,
    )


def _may_transact(session: Session, subject: CreditSubject) -> bool:
    # Households always; business entities where the region allows (issue 10); no other kind.
    return subject.kind == "household" or may_use_wallets(session, subject)


def _spend_statement(dialect: str) -> Any:
    return (
        insert_for_dialect(dialect, _used_codes)
        .values(
            jti=bindparam("b_jti", type_=String),
            expires_at=bindparam("b_expires_at", type_=DateTime(timezone=True)),
            used_at=bindparam("b_used_at", type_=DateTime(timezone=True)),
        )
        .on_conflict_do_nothing()
        .returning(_used_codes.c.jti)
    )


def _spend_params(jti: str, expires_at: datetime) -> dict[str, Any]:
    return {"b_jti": jti, "b_expires_at": expires_at, "b_used_at": utcnow()}


_SPEND_CODE = DriverStatement(_spend_statement)

# PostgreSQL: the holder's read and the code's spending in one statement (a data-modifying
# WITH always runs, whatever the SELECT finds; the caller's checks may still roll it back).
_HOLDER_SPENDING_CODE = DriverStatement(
    lambda dialect: _holder_by_ref(
        select(func.count()).select_from(_spend_statement(dialect).cte("spent")).scalar_subquery()
    )
)


def consume_dynamic_code(session: Session, jti: str, expires_at: datetime) -> None:
    """Spend a dynamic code on a payment; a second use raises code_already_used (409).

    The primary key on `jti` decides, in one statement: on PostgreSQL a concurrent insert of
    the same jti waits for the first transaction and then, if that one committed, inserts
    nothing, so exactly one payment wins. The caller's transaction stays usable either way.
    """
    spent = _SPEND_CODE.first(session, _spend_params(jti, expires_at))
    if spent is None:
        raise Conflict("code_already_used")


def prune_used_codes(session: Session, *, now: datetime | None = None) -> int:
    """Forget spent codes that could not verify any more anyway. Returns rows deleted."""
    cutoff = (now or utcnow()) - timedelta(seconds=policy.allowed_skew_seconds() + 60)
    result = session.execute(delete(UsedDynamicCode).where(UsedDynamicCode.expires_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------- cards

_SERIAL_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # 31 symbols, no 0/O/1/I/L


def _check_char(body: str) -> str:
    total = sum((i + 1) * _SERIAL_ALPHABET.index(ch) for i, ch in enumerate(body))
    return _SERIAL_ALPHABET[total % len(_SERIAL_ALPHABET)]


def new_serial() -> str:
    """8 random symbols and a check symbol, e.g. `7KQ4M2XD9`: a clerk who mistypes one
    symbol or swaps two neighbours is told so rather than sent to another card."""
    body = "".join(secrets.choice(_SERIAL_ALPHABET) for _ in range(8))
    return body + _check_char(body)


def normalise_serial(value: str) -> str | None:
    v = "".join(ch for ch in value.upper() if ch.isalnum())
    if len(v) != 9 or any(ch not in _SERIAL_ALPHABET for ch in v) or _check_char(v[:8]) != v[8]:
        return None
    return v


def format_serial(serial: str) -> str:
    return f"{serial[:4]} {serial[4:8]} {serial[8:]}"


def active_card(session: Session, subject: CreditSubject) -> IntegrityCard | None:
    return session.scalar(
        select(IntegrityCard).where(
            IntegrityCard.subject_id == subject.id, IntegrityCard.status == "active"
        )
    )


def revoke_card(
    session: Session, card: IntegrityCard, reason: str, *, now: datetime | None = None
) -> IntegrityCard:
    """Revoke `card` at once; it joins the revocation list offline terminals keep, at the
    list's next version (mall.codes.revocations)."""
    if card.status != "revoked":
        revoked_at = now or utcnow()
        version = revocations.next_version(session, revoked_at)
        card.status = "revoked"
        card.revoked_at = revoked_at
        card.reason = reason[:64]
        card.revocation_version = version
        session.flush()
    return card


def issue_card(
    session: Session, subject: CreditSubject, *, now: datetime | None = None
) -> IntegrityCard:
    """A new card for the household, signed with the current key; the previous active card
    (if any) is revoked first as `reissued`."""
    if subject.status != "active":
        raise Forbidden("holder_suspended")
    now = now or utcnow()
    previous = active_card(session, subject)
    if previous is not None:
        revoke_card(session, previous, "reissued", now=now)
    kid, _ = keys.signing_key(session, now)
    card = IntegrityCard(
        serial=new_serial(), subject_id=subject.id, kid=kid, status="active", issued_at=now
    )
    session.add(card)
    session.flush()
    return card


def report_lost(
    session: Session, subject: CreditSubject, *, now: datetime | None = None
) -> IntegrityCard:
    """Revoke the household's card at once, and end every login of the household (whoever
    has the card may have its PIN too). No active card: not_found."""
    card = active_card(session, subject)
    if card is None:
        raise NotFound(details={"card": "none active"})
    revoke_card(session, card, "lost", now=now)
    end_household_sessions(session, subject, "card_lost")
    return card


# ---------------------------------------------------------------- PIN


class PinRejected(Forbidden):
    """pin_required / pin_invalid / pin_locked.

    The failure count is flushed before this is raised and must survive the request, so the
    error keeps changes (see DomainError): the error handler commits; a caller that handles
    it itself (a page re-rendering its form) commits before answering.
    """

    keeps_changes = True


def _locked_until(subject: CreditSubject, at: datetime) -> datetime | None:
    if subject.pin_locked_until is None:
        return None
    until = as_aware(subject.pin_locked_until)
    return until if until > at else None


def check_card_pin(
    session: Session, subject: CreditSubject, pin: str | None, *, now: datetime | None = None
) -> None:
    """Check the household PIN for a card payment. 5 wrong tries lock it for 30 minutes
    (the fifth answers pin_locked); the right PIN resets the count."""
    now = now or utcnow()
    # Lock the row so concurrent wrong tries are all counted (SQLite serialises writers).
    # Flush first: the refresh reloads the row and would drop unflushed changes.
    session.flush()
    lock_row(session, subject)
    locked = _locked_until(subject, now)
    if locked is not None:
        raise PinRejected("pin_locked", details={"locked_until": locked.isoformat()})
    if not pin:
        raise PinRejected("pin_required")
    if verify_pin(subject.pin_hash, pin):
        if subject.pin_failed_count or subject.pin_locked_until is not None:
            subject.pin_failed_count = 0
            subject.pin_locked_until = None
            session.flush()
        return
    failures = subject.pin_failed_count + 1
    if failures >= policy.PIN_MAX_FAILURES:
        until = now + timedelta(seconds=policy.PIN_LOCK_SECONDS)
        subject.pin_failed_count = 0
        subject.pin_locked_until = until
        session.flush()
        raise PinRejected("pin_locked", details={"locked_until": until.isoformat()})
    subject.pin_failed_count = failures
    session.flush()
    raise PinRejected("pin_invalid", details={"attempts_left": policy.PIN_MAX_FAILURES - failures})


def check_code_pin(
    session: Session, verified: VerifiedCode, pin: str | None, *, now: datetime | None = None
) -> None:
    """The rule for every till operation that acts for the household (a payment, a benefit
    use): a card code, which anyone holding the card or a photo of it can show, needs the
    household PIN, checked and counted by `check_card_pin`; a dynamic code, shown on the
    household's own phone for a minute, needs none."""
    if verified.kind == "card":
        check_card_pin(session, verified.subject, pin, now=now)


def set_pin(
    session: Session, subject: CreditSubject, new_pin: str, *, reason: str = "pin_changed"
) -> None:
    """Set the household PIN: 6 digits, not all the same, not a run (pin_too_weak, 400).
    Every login of the household ends (mall.subjects.logins): whoever knew the old PIN is out."""
    if not isinstance(new_pin, str) or not pin_is_acceptable(new_pin):
        raise ValidationFailed("pin_too_weak", details={"fields": {"new_pin": ["weak"]}})
    subject.pin_hash = hash_pin(new_pin)
    subject.pin_failed_count = 0
    subject.pin_locked_until = None
    session.flush()
    end_household_sessions(session, subject, reason)


def change_pin(
    session: Session,
    subject: CreditSubject,
    old_pin: str | None,
    new_pin: str,
    *,
    now: datetime | None = None,
) -> None:
    """The household changes its own PIN: the old one is checked like a card payment's."""
    if not isinstance(new_pin, str) or not pin_is_acceptable(new_pin):
        raise ValidationFailed("pin_too_weak", details={"fields": {"new_pin": ["weak"]}})
    check_card_pin(session, subject, old_pin, now=now)
    set_pin(session, subject, new_pin)


def admin_reset_pin(
    session: Session, subject: CreditSubject, new_pin: str | None = None
) -> dict[str, Any]:
    """An admin unlocks the PIN and optionally sets a new one, which ends every login of the
    household (an unlock alone changes no credential and ends none). Either way the phone's
    login lockout and login rate limit are lifted too. Returns what changed (for the audit
    record; never the PIN itself)."""
    changes: dict[str, Any] = {
        "failed_count_before": subject.pin_failed_count,
        "was_locked": subject.pin_locked_until is not None,
        "pin_set": False,
    }
    if new_pin is not None:
        set_pin(session, subject, new_pin, reason="pin_reset")
        changes["pin_set"] = True
    else:
        subject.pin_failed_count = 0
        subject.pin_locked_until = None
        session.flush()
    unlock_farmer_login(session, subject)
    return changes


__all__ = [
    "IssuedCode",
    "PinRejected",
    "VerifiedCode",
    "admin_reset_pin",
    "card_code",
    "change_pin",
    "check_card_pin",
    "check_code_pin",
    "consume_dynamic_code",
    "issue_card",
    "prune_used_codes",
    "report_lost",
    "set_pin",
    "sign_dynamic_code",
    "verify_code",
]
