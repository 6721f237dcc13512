"""Credit subjects other than households: business entities (new agricultural business
entities: family farms, cooperatives, enterprises), village collective economic organisations
and administrative villages.

A business entity's unified social credit code (统一社会信用代码) is kept exactly like a
household's ID number: sealed in `id_number_enc` (context "id_number", so `reveal` opens it),
masked in `id_number_masked`, matched through `id_number_bidx` under the blind-index purpose
"uscc". Its legal representative and members are `subject_members` rows with sealed names.
Organisation names are public (they are on the licence register) and shown in full.

Collectives and villages are one per administrative village (entity_profiles refuses a
second). Business entities hold wallets, codes and benefits only where the region's setting
`business_entities_use_wallets` allows; collectives and villages never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from mall.audit import services as audit
from mall.entities.models import BUSINESS_TYPES, ENTITY_KINDS, EntityProfile
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.ledger.accounts import Wallets, household_wallets
from mall.regions.models import Region
from mall.regions.services import effective_settings
from mall.security.crypto import normalise, sealer
from mall.security.masking import mask_id_number, mask_name
from mall.subjects.models import CreditSubject, SubjectMember
from mall.subjects.services import MemberInput, new_ref
from mall.users.models import User
from mall.users.scope import ensure_can_write, ensure_visible, restrict

USCC_PURPOSE = "uscc"
LEGAL_REP = "法定代表人"
# GB 32100-2015: 18 characters over this alphabet (no I, O, S, V, Z); the last is a check
# character, 31 minus the weighted sum of the first 17 modulo 31.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_REF_PREFIX = {"business": "b", "collective": "c", "village": "v"}


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """The normalised code (upper case, no spaces), or ValidationFailed on field `uscc`."""
    v = normalise(value)
    if (
        len(v) != 18
        or any(ch not in _USCC_ALPHABET for ch in v)
        or not v[2:8].isdigit()  # the administrative division code
        or uscc_check_char(v[:17]) != v[17]
    ):
        raise ValidationFailed(
            details={"fields": {"uscc": ["18 characters (GB 32100) with a valid check character"]}}
        )
    return v


def uscc_index(value: str) -> str:
    return sealer().blind_index(normalise(value), USCC_PURPOSE)


@dataclass(frozen=True)
class EntityView:
    subject: CreditSubject
    profile: EntityProfile


def _village(village: Region) -> Region:
    if village.kind != "village" or village.township_id is None or village.county_id is None:
        raise ValidationFailed(details={"fields": {"village_id": ["must be a village"]}})
    return village


def _subject(session: Session, kind: str, village: Region, name: str) -> CreditSubject:
    name = name.strip()
    if not name or len(name) > 60:
        raise ValidationFailed(details={"fields": {"name": ["1-60 characters"]}})
    s = sealer()
    return CreditSubject(
        ref=new_ref(_REF_PREFIX[kind]),
        kind=kind,
        status="active",
        county_id=village.county_id,
        township_id=village.township_id,
        village_id=village.id,
        name_enc=s.seal(name, "name"),
        name_masked=name[:64],  # an organisation's name is public
        name_bidx=s.blind_index(name, "name"),
        pin_failed_count=0,
    )


def _insert(session: Session, subject: CreditSubject, profile: EntityProfile, why: str) -> None:
    try:
        with session.begin_nested():
            session.add(subject)
            session.flush()
            profile.subject_id = subject.id
            session.add(profile)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(details={"reason": why}) from exc


def create_business(
    session: Session,
    *,
    village: Region,
    name: str,
    uscc: str,
    business_type: str,
    legal_rep: str,
    members: list[MemberInput] | None = None,
) -> CreditSubject:
    _village(village)
    if business_type not in BUSINESS_TYPES:
        raise ValidationFailed(details={"fields": {"business_type": list(BUSINESS_TYPES)}})
    legal_rep = legal_rep.strip()
    if not legal_rep or len(legal_rep) > 30:
        raise ValidationFailed(details={"fields": {"legal_rep": ["1-30 characters"]}})
    code = validate_uscc(uscc)
    s = sealer()
    subject = _subject(session, "business", village, name)
    subject.id_number_enc = s.seal(code, "id_number")
    subject.id_number_masked = mask_id_number(code)
    subject.id_number_bidx = s.blind_index(code, USCC_PURPOSE)
    for person, relation in [
        (legal_rep, LEGAL_REP),
        *((m.name, m.relation) for m in members or []),
    ]:
        subject.members.append(
            SubjectMember(
                name_enc=s.seal(person.strip(), "name"),
                name_masked=mask_name(person),
                relation=relation.strip()[:32],
            )
        )
    profile = EntityProfile(kind="business", business_type=business_type, village_id=village.id)
    _insert(session, subject, profile, "unified social credit code already registered")
    return subject


def create_collective(
    session: Session, *, village: Region, name: str | None = None
) -> CreditSubject:
    """The collective economic organisation (村集体经济组织) of an administrative village."""
    _village(village)
    subject = _subject(session, "collective", village, name or f"{village.name}股份经济合作社")
    profile = EntityProfile(kind="collective", village_id=village.id)
    _insert(session, subject, profile, "the village already has a collective")
    return subject


def create_village_subject(session: Session, *, village: Region) -> CreditSubject:
    """The administrative village as a credit subject (it applies to be a credit village)."""
    _village(village)
    subject = _subject(session, "village", village, village.name)
    profile = EntityProfile(kind="village", village_id=village.id)
    _insert(session, subject, profile, "the village is already a subject")
    return subject


def _of_village(session: Session, kind: str, village_id: int) -> CreditSubject | None:
    return session.scalar(
        select(CreditSubject)
        .join(EntityProfile, EntityProfile.subject_id == CreditSubject.id)
        .where(EntityProfile.kind == kind, EntityProfile.village_id == village_id)
    )


def collective_of(session: Session, village_id: int) -> CreditSubject | None:
    return _of_village(session, "collective", village_id)


def village_subject_of(session: Session, village_id: int) -> CreditSubject | None:
    return _of_village(session, "village", village_id)


def get_entity(session: Session, ref: str, viewer: User | None = None) -> EntityView:
    row = session.execute(
        select(CreditSubject, EntityProfile)
        .join(EntityProfile, EntityProfile.subject_id == CreditSubject.id)
        .options(selectinload(CreditSubject.members))
        .where(CreditSubject.ref == ref)
    ).first()
    if row is None:
        raise NotFound()
    if viewer is not None:
        ensure_visible(viewer, row[0])
    return EntityView(row[0], row[1])


def find_by_uscc(session: Session, uscc: str) -> CreditSubject | None:
    return session.scalar(
        select(CreditSubject).where(
            CreditSubject.kind == "business", CreditSubject.id_number_bidx == uscc_index(uscc)
        )
    )


def search_entities(
    session: Session,
    viewer: User,
    *,
    kind: str,
    q: str | None = None,
    village_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[EntityView]:
    """Newest first within the viewer's region; `q` matches a ref, a full name or a unified
    social credit code exactly."""
    if kind not in ENTITY_KINDS:
        raise ValidationFailed(details={"fields": {"kind": list(ENTITY_KINDS)}})
    joined: Any = (
        select(CreditSubject, EntityProfile)
        .join(EntityProfile, EntityProfile.subject_id == CreditSubject.id)
        .options(selectinload(CreditSubject.members))
    )
    stmt = restrict(
        joined,
        viewer,
        county_col=CreditSubject.county_id,
        township_col=CreditSubject.township_id,
    ).where(CreditSubject.kind == kind)
    if q and q.strip():
        q = q.strip()
        s = sealer()
        stmt = stmt.where(
            or_(
                CreditSubject.ref == q,
                CreditSubject.name_bidx == s.blind_index(q, "name"),
                CreditSubject.id_number_bidx == s.blind_index(q, USCC_PURPOSE),
            )
        )
    if village_id is not None:
        stmt = stmt.where(CreditSubject.village_id == village_id)
    if after_id is not None:
        stmt = stmt.where(CreditSubject.id < after_id)
    rows = session.execute(stmt.order_by(CreditSubject.id.desc()).limit(limit)).all()
    return [EntityView(s, p) for s, p in rows]


# --- wallets ---------------------------------------------------------------------------------


def may_use_wallets(session: Session, subject: CreditSubject) -> bool:
    """Whether the subject may hold wallets, show a credit code and use benefits: households
    always; business entities where `business_entities_use_wallets` is on; others never."""
    if subject.kind == "household":
        return True
    if subject.kind != "business":
        return False
    village = session.get(Region, subject.village_id)
    assert village is not None  # a foreign key
    return bool(effective_settings(session, village).get("business_entities_use_wallets"))


def entity_wallets(session: Session, subject: CreditSubject) -> Wallets:
    """A business entity's points and integrity-money wallets (the household wallet kinds)."""
    if not may_use_wallets(session, subject):
        raise Forbidden(details={"reason": "the region does not let this subject hold wallets"})
    return household_wallets(session, subject)


# --- staff actions: scope checked, audited in the same transaction ----------------------------


def _audit(
    session: Session, actor: User, action: str, subject: CreditSubject, **after: object
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="entity",
        object_id=subject.ref,
        county_id=subject.county_id,
        township_id=subject.township_id,
        after={"kind": subject.kind, "name": subject.name_masked, **after},
    )


def register_business(
    session: Session,
    actor: User,
    *,
    village: Region,
    name: str,
    uscc: str,
    business_type: str,
    legal_rep: str,
    members: list[MemberInput],
) -> CreditSubject:
    ensure_visible(actor, village)
    ensure_can_write(actor, village_id=village.id)
    subject = create_business(
        session,
        village=village,
        name=name,
        uscc=uscc,
        business_type=business_type,
        legal_rep=legal_rep,
        members=members,
    )
    _audit(
        session,
        actor,
        "entity.create",
        subject,
        uscc=subject.id_number_masked,
        business_type=business_type,
    )
    return subject


def register_collective(
    session: Session, actor: User, *, village: Region, name: str | None = None
) -> CreditSubject:
    ensure_visible(actor, village)
    ensure_can_write(actor, village_id=village.id)
    subject = create_collective(session, village=village, name=name)
    _audit(session, actor, "entity.create", subject)
    return subject


def register_village(session: Session, actor: User, *, village: Region) -> CreditSubject:
    ensure_visible(actor, village)
    ensure_can_write(actor, village_id=village.id)
    subject = create_village_subject(session, village=village)
    _audit(session, actor, "entity.create", subject)
    return subject


def ensure_village_subjects(
    session: Session, village: Region
) -> tuple[CreditSubject, CreditSubject]:
    """The village's collective and village subjects, created if missing (no audit: setup)."""
    collective = collective_of(session, village.id) or create_collective(session, village=village)
    subject = village_subject_of(session, village.id) or create_village_subject(
        session, village=village
    )
    return collective, subject
