"""Credit codes: signing, every rejection, rotation overlap, one-use codes, cards, PINs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import jwt
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.codes import keys
from mall.codes.models import CodeSigningKey, IntegrityCard, UsedDynamicCode
from mall.codes.services import (
    PinRejected,
    admin_reset_pin,
    card_code,
    change_pin,
    check_card_pin,
    consume_dynamic_code,
    format_serial,
    issue_card,
    new_serial,
    normalise_serial,
    prune_used_codes,
    report_lost,
    set_pin,
    sign_dynamic_code,
    verify_code,
)
from mall.errors import Conflict, DomainError, Forbidden, Gone, NotFound, Unprocessable
from mall.extensions import db
from mall.security.crypto import sealer
from mall.subjects.models import CreditSubject
from mall.subjects.services import plain_value
from tests.codes.conftest import NOW
from tests.factories import PIN, make_county, make_household


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _segments(code: str) -> tuple[dict, dict]:
    header, payload, _ = code.split(".")
    return (
        json.loads(keys.b64url_decode(header)),
        json.loads(keys.b64url_decode(payload)),
    )


def _forge(header: dict, claims: dict, sign) -> str:  # type: ignore[no-untyped-def]
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return signing_input + "." + _b64(sign(signing_input.encode()))


@contextmanager
def _expect(
    exc: type[DomainError], code: str, reason: str | None = None
) -> Iterator[pytest.ExceptionInfo[DomainError]]:
    """pytest.raises, then check the error code (and the invalid_code reason)."""
    with pytest.raises(exc) as info:
        yield info
    assert info.value.code == code
    if reason is not None:
        assert info.value.details.get("reason") == reason


# ------------------------------------------------------------------ signing


def test_first_key_is_created_lazily_and_stored_sealed(
    session: Session, household: CreditSubject
) -> None:
    assert session.scalar(select(func.count(CodeSigningKey.id))) == 0
    issued = sign_dynamic_code(session, household, now=NOW)
    rows = session.scalars(select(CodeSigningKey)).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.private_key_sealed.startswith("v1:")
    raw_private = keys.b64url_decode(sealer().open(row.private_key_sealed, "code_signing_key"))
    assert len(raw_private) == 32
    assert raw_private not in row.private_key_sealed.encode()
    header, _ = _segments(issued.code)
    assert header == {"alg": "EdDSA", "kid": row.kid}
    # A second code reuses the key.
    sign_dynamic_code(session, household, now=NOW)
    assert session.scalar(select(func.count(CodeSigningKey.id))) == 1


def test_dynamic_code_claims_are_compact_and_carry_no_personal_data(
    session: Session, household: CreditSubject
) -> None:
    issued = sign_dynamic_code(session, household, now=NOW)
    _, claims = _segments(issued.code)
    assert set(claims) == {"v", "k", "sub", "lvl", "jti", "iat", "exp"}
    assert claims["v"] == 1
    assert claims["k"] == "d"
    assert claims["sub"] == household.ref
    assert claims["lvl"] == "AAA"
    assert claims["exp"] - claims["iat"] == 60
    assert issued.expires_at == NOW + timedelta(seconds=60)
    assert issued.refresh_after < issued.expires_at
    assert len(issued.code) < 300
    for field in ("name", "phone", "id_number"):
        value = plain_value(household, field)
        assert value
        assert value not in issued.code
        assert value not in json.dumps(claims, ensure_ascii=False)


def test_verify_returns_the_household(session: Session, household: CreditSubject) -> None:
    issued = sign_dynamic_code(session, household, now=NOW)
    result = verify_code(session, issued.code, now=NOW + timedelta(seconds=5))
    assert result.subject.id == household.id
    assert result.kind == "dynamic"
    assert result.level_code == "AAA"
    assert result.expires_at == issued.expires_at
    assert result.card is None
    assert len(result.jti) == 12


def test_an_unrated_or_lapsed_level_is_not_claimed(
    session: Session, household: CreditSubject
) -> None:
    household.level_valid_until = date(2026, 1, 1)
    _, claims = _segments(sign_dynamic_code(session, household, now=NOW).code)
    assert "lvl" not in claims
    assert verify_code(session, sign_dynamic_code(session, household, now=NOW).code, now=NOW)


def test_suspended_household_gets_no_code(session: Session, household: CreditSubject) -> None:
    household.status = "frozen"
    with _expect(Forbidden, "holder_suspended"):
        sign_dynamic_code(session, household, now=NOW)


# ------------------------------------------------------------------ rejections


def _valid_claims(household: CreditSubject) -> dict:
    iat = int(NOW.timestamp())
    return {"v": 1, "k": "d", "sub": household.ref, "jti": "abc", "iat": iat, "exp": iat + 60}


def test_alg_none_is_rejected(session: Session, household: CreditSubject) -> None:
    kid, _ = keys.signing_key(session, NOW)
    for alg in ("none", "None", "NONE"):
        header = _b64(json.dumps({"alg": alg, "kid": kid}).encode())
        payload = _b64(json.dumps(_valid_claims(household)).encode())
        with _expect(Unprocessable, "invalid_code", "algorithm"):
            verify_code(session, f"{header}.{payload}.", now=NOW)


@pytest.mark.parametrize("secret_form", ["raw", "x", "pem"])
def test_hmac_signed_with_the_public_key_is_rejected(
    session: Session, household: CreditSubject, secret_form: str
) -> None:
    """Algorithm confusion: an attacker HMACs a code with the published public key."""
    kid, private = keys.signing_key(session, NOW)
    public = private.public_key()
    from cryptography.hazmat.primitives import serialization as ser

    secret = {
        "raw": public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw),
        "x": keys.b64url(public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)).encode(),
        "pem": public.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo),
    }[secret_form]
    for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        forged = _forge(
            {"alg": alg, "kid": kid},
            _valid_claims(household),
            lambda data, d=digest: hmac.new(secret, data, d).digest(),
        )
        with _expect(Unprocessable, "invalid_code", "algorithm"):
            verify_code(session, forged, now=NOW)
    # Even a header that claims EdDSA over an HMAC signature fails the signature check.
    forged = _forge(
        {"alg": "EdDSA", "kid": kid},
        _valid_claims(household),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest() * 2,
    )
    with _expect(Unprocessable, "invalid_code", "signature"):
        verify_code(session, forged, now=NOW)


def test_other_asymmetric_algorithms_are_rejected(
    session: Session, household: CreditSubject
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    kid, _ = keys.signing_key(session, NOW)
    other = jwt.encode(
        _valid_claims(household), ec.generate_private_key(ec.SECP256R1()), "ES256", {"kid": kid}
    )
    with _expect(Unprocessable, "invalid_code", "algorithm"):
        verify_code(session, other, now=NOW)


def test_unknown_kid_and_missing_kid_are_rejected(
    session: Session, household: CreditSubject
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    keys.signing_key(session, NOW)
    stranger = Ed25519PrivateKey.generate()
    for headers in ({"kid": "deadbeef"}, {}, {"kid": "x" * 40}):
        code = jwt.encode(_valid_claims(household), stranger, "EdDSA", headers)
        with _expect(Unprocessable, "invalid_code", "unknown_key"):
            verify_code(session, code, now=NOW)
    numeric = _forge({"alg": "EdDSA", "kid": 7}, _valid_claims(household), stranger.sign)
    with _expect(Unprocessable, "invalid_code"):
        verify_code(session, numeric, now=NOW)


def test_a_foreign_key_under_our_kid_is_a_bad_signature(
    session: Session, household: CreditSubject
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    kid, _ = keys.signing_key(session, NOW)
    code = jwt.encode(_valid_claims(household), Ed25519PrivateKey.generate(), "EdDSA", {"kid": kid})
    with _expect(Unprocessable, "invalid_code", "signature"):
        verify_code(session, code, now=NOW)


def test_tampered_codes_are_rejected(session: Session, household: CreditSubject) -> None:
    code = sign_dynamic_code(session, household, now=NOW).code
    header, payload, signature = code.split(".")
    claims = json.loads(keys.b64url_decode(payload))
    claims["lvl"] = "AAA+"
    upgraded = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    flipped_sig = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    for bad in (upgraded, f"{header}.{payload}.{flipped_sig}", f"{header}.{payload}."):
        with _expect(Unprocessable, "invalid_code", "signature"):
            verify_code(session, bad, now=NOW)


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b.c", "...", "x" * 5000, None, 123, ["a"], "eyJhbGciOiJFZERTQSJ9.e30"],
)
def test_malformed_input_is_invalid_code(
    session: Session, household: CreditSubject, garbage: object
) -> None:
    keys.signing_key(session, NOW)
    with _expect(Unprocessable, "invalid_code"):
        verify_code(session, garbage, now=NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"k": "x"},
        {"sub": 5},
        {"jti": ""},
        {"iat": "1"},
        {"iat": True},
        {"exp": None},
        {"lvl": ["A"]},
        {"k": "c"},  # a card code without a card serial
    ],
)
def test_well_signed_but_misshapen_claims_are_invalid(
    session: Session, household: CreditSubject, change: dict
) -> None:
    kid, private = keys.signing_key(session, NOW)
    claims = _valid_claims(household) | change
    code = jwt.encode(claims, private, "EdDSA", {"kid": kid})
    with _expect(Unprocessable, "invalid_code", "claims"):
        verify_code(session, code, now=NOW)


def test_a_non_object_payload_is_invalid(session: Session) -> None:
    kid, private = keys.signing_key(session, NOW)
    code = jwt.api_jws.encode(b"[1,2]", private, "EdDSA", {"kid": kid})
    with _expect(Unprocessable, "invalid_code"):
        verify_code(session, code, now=NOW)


def test_expiry_allows_a_small_skew(session: Session, household: CreditSubject) -> None:
    code = sign_dynamic_code(session, household, now=NOW).code
    assert verify_code(session, code, now=NOW + timedelta(seconds=70))  # 60 + 10 skew
    with _expect(Gone, "code_expired"):
        verify_code(session, code, now=NOW + timedelta(seconds=71))
    with _expect(Gone, "code_expired"):
        verify_code(session, code, now=NOW + timedelta(days=3))


def test_codes_from_the_future_are_invalid(session: Session, household: CreditSubject) -> None:
    early = sign_dynamic_code(session, household, now=NOW + timedelta(seconds=10)).code
    assert verify_code(session, early, now=NOW)  # within the skew: a fast phone clock
    later = sign_dynamic_code(session, household, now=NOW + timedelta(seconds=11)).code
    with _expect(Unprocessable, "invalid_code", "not_yet_valid"):
        verify_code(session, later, now=NOW)


def test_unknown_household(session: Session, household: CreditSubject) -> None:
    kid, private = keys.signing_key(session, NOW)
    claims = _valid_claims(household) | {"sub": "hnobody000000000"}
    with _expect(NotFound, "holder_not_found"):
        verify_code(session, jwt.encode(claims, private, "EdDSA", {"kid": kid}), now=NOW)


@pytest.mark.parametrize("status", ["frozen", "revoked"])
def test_suspended_households_are_refused(
    session: Session, household: CreditSubject, status: str
) -> None:
    code = sign_dynamic_code(session, household, now=NOW).code
    card = issue_card(session, household, now=NOW)
    printed = card_code(session, card)
    household.status = status
    session.flush()
    for c in (code, printed):
        with _expect(Forbidden, "holder_suspended"):
            verify_code(session, c, now=NOW)


# ------------------------------------------------------------------ rotation


def test_rotation_overlap_for_dynamic_codes(session: Session, household: CreditSubject) -> None:
    old_code = sign_dynamic_code(session, household, now=NOW).code
    long_lived = sign_dynamic_code(session, household, now=NOW, lifetime=3600).code
    old_kid = _segments(old_code)[0]["kid"]
    rotated_at = NOW + timedelta(seconds=1)
    new = keys.rotate_key(session, now=rotated_at)
    assert new.kid != old_kid

    new_code = sign_dynamic_code(session, household, now=rotated_at).code
    assert _segments(new_code)[0]["kid"] == new.kid
    # The old key still verifies what it signed while that can be valid...
    assert verify_code(session, old_code, now=NOW + timedelta(seconds=50)).kid == old_kid
    old = session.scalar(select(CodeSigningKey).where(CodeSigningKey.kid == old_kid))
    assert old is not None
    assert old.retired_at is not None
    assert old.verify_until is not None
    verify_until = rotated_at + keys.dynamic_overlap()
    assert verify_until >= rotated_at + timedelta(seconds=70)
    assert verify_code(session, long_lived, now=verify_until)
    # ...and nothing once its overlap is over.
    with _expect(Unprocessable, "invalid_code", "key_retired"):
        verify_code(session, long_lived, now=verify_until + timedelta(seconds=1))
    # The published set drops it then too (no card names it).
    published = {k["kid"] for k in keys.published_jwks(session, now=rotated_at)}
    assert published == {old_kid, new.kid}
    later = {k["kid"] for k in keys.published_jwks(session, now=verify_until + timedelta(1))}
    assert later == {new.kid}


def test_rotation_can_prepublish_the_next_key(session: Session, household: CreditSubject) -> None:
    first_kid, _ = keys.signing_key(session, NOW)
    new = keys.rotate_key(session, now=NOW, activate_in=600)
    # Published at once, signing only from the switch.
    assert new.kid in {k["kid"] for k in keys.published_jwks(session, now=NOW)}
    before = sign_dynamic_code(session, household, now=NOW + timedelta(seconds=599)).code
    after = sign_dynamic_code(session, household, now=NOW + timedelta(seconds=600)).code
    assert _segments(before)[0]["kid"] == first_kid
    assert _segments(after)[0]["kid"] == new.kid
    # Rotating again before the switch retires the pending key too: one signer at a time.
    newer = keys.rotate_key(session, now=NOW + timedelta(seconds=10))
    assert keys.signing_key(session, NOW + timedelta(seconds=11))[0] == newer.kid
    assert keys.signing_key(session, NOW + timedelta(seconds=700))[0] == newer.kid


def test_cards_keep_verifying_after_rotation_until_reissued(
    session: Session, household: CreditSubject
) -> None:
    card = issue_card(session, household, now=NOW)
    printed = card_code(session, card)
    old_kid = card.kid
    keys.rotate_key(session, now=NOW + timedelta(seconds=5))
    much_later = NOW + timedelta(days=400)
    result = verify_code(session, printed, now=much_later)
    assert result.kind == "card"
    assert result.card is not None
    assert result.card.serial == card.serial
    assert result.expires_at is None
    # Offline terminals get the old key as long as an active card names it.
    assert old_kid in {k["kid"] for k in keys.published_jwks(session, now=much_later)}
    # Reissue re-signs with the current key and revokes the old card.
    new_card = issue_card(session, household, now=much_later)
    assert new_card.kid != old_kid
    with _expect(Unprocessable, "invalid_code", "card_revoked"):
        verify_code(session, printed, now=much_later)
    assert verify_code(session, card_code(session, new_card), now=much_later).card == new_card
    assert old_kid not in {k["kid"] for k in keys.published_jwks(session, now=much_later)}


def test_a_card_code_bound_to_another_key_is_refused(
    session: Session, household: CreditSubject
) -> None:
    """A retired key cannot vouch for a card it did not sign."""
    card = issue_card(session, household, now=NOW)
    keys.rotate_key(session, now=NOW + timedelta(seconds=1))
    new_kid, new_private = keys.signing_key(session, NOW + timedelta(seconds=2))
    _, claims = _segments(card_code(session, card))
    forged = jwt.encode(claims, new_private, "EdDSA", {"kid": new_kid})
    with _expect(Unprocessable, "invalid_code", "card_revoked"):
        verify_code(session, forged, now=NOW + timedelta(seconds=3))


def test_key_cache_notices_rotation_by_another_process(
    app, session: Session, household: CreditSubject
) -> None:  # type: ignore[no-untyped-def]
    kid, _ = keys.signing_key(session, NOW)
    app.config["CODE_KEY_CACHE_SECONDS"] = 3600
    try:
        keys.loaded_keys(session)
        # Another process rotates: simulated by writing the table behind the cache's back.
        other = CodeSigningKey(
            kid="0ther000",
            public_key=keys.b64url(b"\x01" * 32),
            private_key_sealed=sealer().seal(keys.b64url(b"\x02" * 32), "code_signing_key"),
            activated_at=NOW,
        )
        session.add(other)
        session.flush()
        assert "0ther000" not in keys.loaded_keys(session)  # trusted for the interval
        # An unknown kid forces one re-read.
        assert keys.verification_key(session, "0ther000") is not None
    finally:
        del app.config["CODE_KEY_CACHE_SECONDS"]
        keys.clear_key_cache()
    assert kid


# ------------------------------------------------------------------ one use


def test_a_dynamic_code_pays_once(session: Session, household: CreditSubject) -> None:
    result = verify_code(session, sign_dynamic_code(session, household, now=NOW).code, now=NOW)
    assert result.expires_at is not None
    consume_dynamic_code(session, result.jti, result.expires_at)
    with _expect(Conflict, "code_already_used"):
        consume_dynamic_code(session, result.jti, result.expires_at)
    # The caller's transaction is still usable after the conflict.
    assert session.scalar(select(func.count()).select_from(UsedDynamicCode)) == 1


def test_verifying_with_spend_spends_a_dynamic_code_once(
    session: Session, household: CreditSubject
) -> None:
    code = sign_dynamic_code(session, household, now=NOW).code
    spent = verify_code(session, code, now=NOW, spend=True)
    assert session.scalars(select(UsedDynamicCode.jti)).all() == [spent.jti]
    assert verify_code(session, code, now=NOW).jti == spent.jti  # scans still verify it
    with _expect(Conflict, "code_already_used"):
        verify_code(session, code, now=NOW, spend=True)
    # A card is not spent (its PIN is the caller's check).
    printed = card_code(session, issue_card(session, household, now=NOW))
    verify_code(session, printed, now=NOW, spend=True)
    verify_code(session, printed, now=NOW, spend=True)
    assert session.scalar(select(func.count()).select_from(UsedDynamicCode)) == 1


def test_a_holder_refused_is_refused_before_the_code_counts_as_used(
    session: Session, household: CreditSubject
) -> None:
    code = sign_dynamic_code(session, household, now=NOW).code
    verify_code(session, code, now=NOW, spend=True)
    household.status = "frozen"
    session.flush()
    with _expect(Forbidden, "holder_suspended"):
        verify_code(session, code, now=NOW, spend=True)


def test_prune_forgets_only_expired_codes(session: Session) -> None:
    consume_dynamic_code(session, "old", NOW - timedelta(minutes=5))
    consume_dynamic_code(session, "fresh", NOW + timedelta(seconds=30))
    assert prune_used_codes(session, now=NOW) == 1
    assert session.scalars(select(UsedDynamicCode.jti)).all() == ["fresh"]


@pytest.mark.postgres_only
def test_concurrent_payments_with_one_code_exactly_one_wins(committed) -> None:  # type: ignore[no-untyped-def]
    jti, expires_at = "race-" + new_serial(), NOW + timedelta(seconds=60)
    threads_n = 20
    barrier = threading.Barrier(threads_n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def pay() -> None:
        with Session(db.engine) as s:
            barrier.wait()
            try:
                consume_dynamic_code(s, jti, expires_at)
                s.commit()
                outcome = "won"
            except Conflict as exc:
                s.rollback()
                outcome = exc.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=pay) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["code_already_used"] * (threads_n - 1) + ["won"]
    with Session(db.engine) as s:
        assert s.scalar(select(func.count()).select_from(UsedDynamicCode)) == 1


# ------------------------------------------------------------------ cards


def test_serials_are_short_readable_and_checked() -> None:
    serial = new_serial()
    assert len(serial) == 9
    assert not set(serial) & set("01IOL")
    assert normalise_serial(format_serial(serial).lower()) == serial
    typo = serial[:3] + ("2" if serial[3] != "2" else "3") + serial[4:]
    assert normalise_serial(typo) is None
    swapped = serial[1] + serial[0] + serial[2:]
    assert serial[0] == serial[1] or normalise_serial(swapped) is None


def test_card_code_is_static_and_names_the_card(session: Session, household: CreditSubject) -> None:
    card = issue_card(session, household, now=NOW)
    code = card_code(session, card)
    assert card_code(session, card) == code
    header, claims = _segments(code)
    assert header["kid"] == card.kid
    assert claims["k"] == "c"
    assert claims["card"] == card.serial
    assert "exp" not in claims
    result = verify_code(session, code, now=NOW + timedelta(days=365))
    assert result.kind == "card"
    assert result.card == card


def test_reissue_revokes_the_previous_card(session: Session, household: CreditSubject) -> None:
    first = issue_card(session, household, now=NOW)
    first_code = card_code(session, first)
    second = issue_card(session, household, now=NOW + timedelta(hours=1))
    assert first.status == "revoked"
    assert first.reason == "reissued"
    assert first.revoked_at is not None
    assert second.serial != first.serial
    active = session.scalars(
        select(IntegrityCard).where(
            IntegrityCard.subject_id == household.id, IntegrityCard.status == "active"
        )
    ).all()
    assert active == [second]
    with _expect(Unprocessable, "invalid_code", "card_revoked"):
        verify_code(session, first_code, now=NOW + timedelta(hours=2))


def test_the_database_allows_one_active_card_per_household(
    session: Session, household: CreditSubject
) -> None:
    from sqlalchemy.exc import IntegrityError

    card = issue_card(session, household, now=NOW)
    second = IntegrityCard(
        serial=new_serial(), subject_id=household.id, kid=card.kid, status="active", issued_at=NOW
    )
    nested = session.begin_nested()
    session.add(second)
    with pytest.raises(IntegrityError):
        session.flush()
    nested.rollback()


def test_report_lost_revokes_at_once(session: Session, household: CreditSubject) -> None:
    card = issue_card(session, household, now=NOW)
    code = card_code(session, card)
    lost = report_lost(session, household, now=NOW + timedelta(minutes=1))
    assert lost.status == "revoked"
    assert lost.reason == "lost"
    with _expect(Unprocessable, "invalid_code", "card_revoked"):
        verify_code(session, code, now=NOW + timedelta(minutes=1))
    with _expect(NotFound, "not_found"):
        report_lost(session, household)


def test_a_card_code_naming_another_households_card_is_refused(
    session: Session, household: CreditSubject
) -> None:
    county = make_county(session, townships=1, villages_per_township=1)
    neighbour = make_household(session, county.villages[0], name="王小明")
    theirs = issue_card(session, neighbour, now=NOW)
    kid, private = keys.signing_key(session, NOW)
    _, claims = _segments(card_code(session, theirs))
    claims["sub"] = household.ref
    forged = jwt.encode(claims, private, "EdDSA", {"kid": kid})
    with _expect(Unprocessable, "invalid_code", "card_revoked"):
        verify_code(session, forged, now=NOW)


# ------------------------------------------------------------------ PIN


def test_pin_required_invalid_and_reset_by_the_right_pin(
    session: Session, household: CreditSubject
) -> None:
    for missing in (None, ""):
        with _expect(PinRejected, "pin_required"):
            check_card_pin(session, household, missing, now=NOW)
    with _expect(PinRejected, "pin_invalid"):
        check_card_pin(session, household, "000111", now=NOW)
    assert household.pin_failed_count == 1
    with _expect(PinRejected, "pin_invalid") as info:
        check_card_pin(session, household, "000112", now=NOW)
    assert info.value.status == 403
    assert info.value.details == {"attempts_left": 3}
    assert household.pin_failed_count == 2
    check_card_pin(session, household, PIN, now=NOW)
    assert household.pin_failed_count == 0


def test_five_wrong_pins_lock_for_thirty_minutes(
    session: Session, household: CreditSubject
) -> None:
    for _ in range(4):
        with _expect(PinRejected, "pin_invalid"):
            check_card_pin(session, household, "000111", now=NOW)
    with _expect(PinRejected, "pin_locked"):
        check_card_pin(session, household, "000111", now=NOW)
    # Locked: even the right PIN is refused, without telling whether it was right.
    with _expect(PinRejected, "pin_locked"):
        check_card_pin(session, household, PIN, now=NOW + timedelta(minutes=29, seconds=59))
    check_card_pin(session, household, PIN, now=NOW + timedelta(minutes=30))
    assert household.pin_failed_count == 0
    assert household.pin_locked_until is None


def test_failed_count_survives_the_rollback_when_the_caller_commits_first(
    session: Session, household: CreditSubject
) -> None:
    """The documented pattern: commit on PinRejected, then let it propagate."""

    def pay_with_card() -> None:
        try:
            check_card_pin(session, household, "000111", now=NOW)
        except PinRejected:
            session.commit()
            raise

    with pytest.raises(PinRejected):
        pay_with_card()
    session.rollback()
    session.expire_all()
    assert session.get(CreditSubject, household.id).pin_failed_count == 1  # type: ignore[union-attr]


def test_set_pin_refuses_weak_pins(session: Session, household: CreditSubject) -> None:
    for weak in ("111111", "123456", "654321", "12345", "1234567", "12a456", "１２３４５８"):
        with _expect(DomainError, "pin_too_weak"):
            set_pin(session, household, weak)
    set_pin(session, household, "280419")
    check_card_pin(session, household, "280419", now=NOW)


def test_change_pin_checks_the_old_one(session: Session, household: CreditSubject) -> None:
    with _expect(PinRejected, "pin_invalid"):
        change_pin(session, household, "000111", "280419", now=NOW)
    change_pin(session, household, PIN, "280419", now=NOW)
    check_card_pin(session, household, "280419", now=NOW)


def test_admin_reset_unlocks_and_reports_what_changed(
    session: Session, household: CreditSubject
) -> None:
    for _ in range(5):
        with pytest.raises(PinRejected):
            check_card_pin(session, household, "000111", now=NOW)
    changes = admin_reset_pin(session, household)
    assert changes == {"failed_count_before": 0, "was_locked": True, "pin_set": False}
    check_card_pin(session, household, PIN, now=NOW)
    with pytest.raises(PinRejected):
        check_card_pin(session, household, "000111", now=NOW)
    changes = admin_reset_pin(session, household, "280419")
    assert changes == {"failed_count_before": 1, "was_locked": False, "pin_set": True}
    assert "280419" not in json.dumps(changes)
    check_card_pin(session, household, "280419", now=NOW)
