"""Households and other credit subjects: enrolment, lookup, status, reveal.

Personal fields enter here in plain text and leave sealed, masked and blind-indexed; the
only way back to plain text is `reveal`, which audits the act.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.db import add_unique
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.regions.models import Region
from mall.security.crypto import normalise, sealer
from mall.security.masking import mask_id_number, mask_name, mask_phone
from mall.security.passwords import hash_pin, pin_is_acceptable
from mall.subjects.logins import end_household_sessions
from mall.subjects.models import SUBJECT_STATUSES, CreditSubject, SubjectMember
from mall.users import policy
from mall.users.models import User
from mall.users.scope import ensure_can_write, ensure_visible

_REF_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/1/i/l/o: read aloud without doubt


def new_ref(prefix: str = "h") -> str:
    return prefix + "".join(secrets.choice(_REF_ALPHABET) for _ in range(15))


@dataclass(frozen=True)
class MemberInput:
    name: str
    relation: str


def _validate_id_number(value: str) -> str:
    v = normalise(value)
    if len(v) != 18 or not v[:17].isdigit() or not (v[17].isdigit() or v[17] == "X"):
        raise ValidationFailed(
            details={"fields": {"id_number": ["18 characters: 17 digits and a digit or X"]}}
        )
    return v


def _validate_phone(value: str) -> str:
    v = normalise(value)
    if len(v) != 11 or not v.isdigit() or v[0] != "1":
        raise ValidationFailed(details={"fields": {"phone": ["11-digit mobile number"]}})
    return v


def create_household(
    session: Session,
    *,
    village: Region,
    head_name: str,
    id_number: str | None = None,
    phone: str | None = None,
    members: list[MemberInput] | None = None,
    pin: str | None = None,
) -> CreditSubject:
    if village.kind != "village" or village.township_id is None or village.county_id is None:
        raise ValidationFailed(details={"fields": {"village_id": ["must be a village"]}})
    head_name = head_name.strip()
    if not head_name or len(head_name) > 30:
        raise ValidationFailed(details={"fields": {"head_name": ["1-30 characters"]}})
    s = sealer()
    subject = CreditSubject(
        ref=new_ref("h"),
        kind="household",
        status="active",
        county_id=village.county_id,
        township_id=village.township_id,
        village_id=village.id,
        name_enc=s.seal(head_name, "name"),
        name_masked=mask_name(head_name),
        name_bidx=s.blind_index(head_name, "name"),
        pin_failed_count=0,
    )
    if id_number:
        v = _validate_id_number(id_number)
        subject.id_number_enc = s.seal(v, "id_number")
        subject.id_number_masked = mask_id_number(v)
        subject.id_number_bidx = s.blind_index(v, "id_number")
    if phone:
        v = _validate_phone(phone)
        subject.phone_enc = s.seal(v, "phone")
        subject.phone_masked = mask_phone(v)
        subject.phone_bidx = s.blind_index(v, "phone")
    if pin is not None:
        if not pin_is_acceptable(pin):
            raise ValidationFailed("pin_too_weak", details={"fields": {"pin": ["weak"]}})
        subject.pin_hash = hash_pin(pin)
    for m in members or []:
        subject.members.append(
            SubjectMember(
                name_enc=s.seal(m.name.strip(), "name"),
                name_masked=mask_name(m.name),
                relation=m.relation.strip()[:32],
            )
        )
    add_unique(
        session, subject, Conflict(details={"reason": "id_number or phone already enrolled"})
    )
    return subject


def get_by_ref(session: Session, ref: str) -> CreditSubject:
    subject = session.scalar(select(CreditSubject).where(CreditSubject.ref == ref))
    if subject is None:
        raise NotFound("holder_not_found")
    return subject


def find_by_phone(session: Session, phone: str) -> CreditSubject | None:
    bidx = sealer().blind_index(phone, "phone")
    return session.scalar(select(CreditSubject).where(CreditSubject.phone_bidx == bidx))


def find_by_id_number(session: Session, id_number: str) -> CreditSubject | None:
    bidx = sealer().blind_index(id_number, "id_number")
    return session.scalar(select(CreditSubject).where(CreditSubject.id_number_bidx == bidx))


# Entering these ends every login of the household (a frozen one may log in again, to read).
SESSION_ENDING_STATUSES = {"frozen": "status_frozen", "revoked": "status_revoked"}


def set_status(session: Session, subject: CreditSubject, status: str) -> None:
    """Set the household's status. Freezing or revoking it ends its logins (mall.subjects.logins):
    a login or code obtained before is refused from then on."""
    if status not in SUBJECT_STATUSES:
        raise ValidationFailed(details={"fields": {"status": list(SUBJECT_STATUSES)}})
    changed = subject.status != status
    subject.status = status
    session.flush()
    if changed and status in SESSION_ENDING_STATUSES:
        end_household_sessions(session, subject, SESSION_ENDING_STATUSES[status])


REVEALABLE = {"name": "name_enc", "id_number": "id_number_enc", "phone": "phone_enc"}


def plain_value(subject: CreditSubject, field: str) -> str | None:
    """Unseal one personal field. Callers outside this package go through `reveal`."""
    sealed = getattr(subject, REVEALABLE[field])
    return sealer().open(sealed, field) if sealed else None


# --- staff actions: each checks scope and writes its audit entry in the same transaction ---


def _snapshot(subject: CreditSubject) -> dict[str, object]:
    return {
        "status": subject.status,
        "name": subject.name_masked,
        "phone": subject.phone_masked,
        "id_number": subject.id_number_masked,
        "village_id": subject.village_id,
    }


def enrol_household(
    session: Session,
    actor: User,
    *,
    village: Region,
    head_name: str,
    id_number: str | None,
    phone: str | None,
    members: list[MemberInput],
) -> CreditSubject:
    ensure_visible(actor, village)
    ensure_can_write(actor, village_id=village.id)
    subject = create_household(
        session,
        village=village,
        head_name=head_name,
        id_number=id_number,
        phone=phone,
        members=members,
    )
    audit.record(
        session,
        actor=actor,
        action="household.create",
        object_type="household",
        object_id=subject.ref,
        county_id=subject.county_id,
        township_id=subject.township_id,
        after=_snapshot(subject),
    )
    return subject


def change_status(
    session: Session, actor: User, subject: CreditSubject, status: str, reason: str
) -> CreditSubject:
    ensure_visible(actor, subject, "holder_not_found")
    policy.ensure(policy.may_change_household_status(actor, subject))
    if not reason.strip():
        raise ValidationFailed(details={"fields": {"reason": ["required"]}})
    before = _snapshot(subject)
    set_status(session, subject, status)
    audit.record(
        session,
        actor=actor,
        action=f"household.status.{status}",
        object_type="household",
        object_id=subject.ref,
        county_id=subject.county_id,
        township_id=subject.township_id,
        before=before,
        after=_snapshot(subject),
        note=reason,
    )
    return subject


def reveal(
    session: Session, actor: User, subject: CreditSubject, field: str, reason: str
) -> str | None:
    """Show one personal field in full to an admin who may see it; the reveal is audited."""
    ensure_visible(actor, subject, "holder_not_found")
    policy.ensure(policy.may_reveal_personal_data(actor, subject))
    if field not in REVEALABLE:
        raise ValidationFailed(details={"fields": {"field": sorted(REVEALABLE)}})
    if not reason.strip():
        raise ValidationFailed(details={"fields": {"reason": ["required"]}})
    audit.record(
        session,
        actor=actor,
        action="household.reveal",
        object_type="household",
        object_id=subject.ref,
        county_id=subject.county_id,
        township_id=subject.township_id,
        after={"field": field},
        note=reason,
    )
    return plain_value(subject, field)
