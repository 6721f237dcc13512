"""Ed25519 signing keys for credit codes: lazy first key, rotation with overlap, cache, JWKS.

Overlap, and why card codes are handled differently
- A key signs from `activated_at` until `retired_at`. Rotation creates the next key and sets
  both times to the same instant (now, or later with `activate_in` so terminals can fetch the
  new public key before any code uses it).
- Dynamic codes live `lifetime` seconds. A retired key keeps verifying them until
  `verify_until = retired_at + lifetime + allowed skew + key-cache interval` (the cache term
  covers processes that signed with the old key for a few seconds before noticing the
  rotation). After that no code it signed can be valid and it verifies no dynamic code.
- Card codes never expire, and reprinting every card at each rotation is not practical for
  households without phones. So a card is re-signed only when it is reissued, and its row
  records the `kid` that signed it. Card verification looks up the card serial and requires
  the card to be active and bound to the code's `kid`; any stored key may verify a card
  code that way, whatever its `verify_until`. `published_jwks` therefore lists every key
  that can still verify something: not past `verify_until`, or named by an active card, so
  an offline terminal can check old cards too. (After a key compromise: reissue the cards
  bound to that key, and the key drops out of the list.)

Keys are loaded once per process and cached per app. The cache re-checks a cheap version of
the table (count, max kid, count retired) at most every `key_cache_seconds`; rotation in
this process clears it at once; an unknown `kid` forces a re-check (at most once a second).
The first key is created lazily by the first caller that needs to sign, never at start-up.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from flask import current_app
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from mall.clock import as_aware, utcnow
from mall.codes import policy
from mall.codes.models import CodeSigningKey, IntegrityCard
from mall.security.crypto import sealer

_SEAL_CONTEXT = "code_signing_key"
_ADVISORY_LOCK_ID = 0x6D616C6C636F6465  # "mallcode": serialises key creation and rotation
_FORCED_REFRESH_MIN_SECONDS = 1.0


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    public: Ed25519PublicKey
    x: str
    activated_at: datetime
    retired_at: datetime | None
    verify_until: datetime | None
    private_sealed: str

    def signs_at(self, at: datetime) -> bool:
        return self.activated_at <= at and (self.retired_at is None or at < self.retired_at)

    def verifies_dynamic_at(self, at: datetime) -> bool:
        return self.verify_until is None or at <= self.verify_until


@dataclass
class _Snapshot:
    keys: dict[str, LoadedKey]
    version: tuple[object, ...]
    checked_at: float


@dataclass
class KeyCache:
    snapshot: _Snapshot | None = None
    forced_at: float = 0.0
    private: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.snapshot = None
            self.forced_at = 0.0
            self.private.clear()


def key_cache() -> KeyCache:
    cache = current_app.extensions.get("mall_code_keys")
    if cache is None:
        cache = current_app.extensions.setdefault("mall_code_keys", KeyCache())
    return cache


def clear_key_cache() -> None:
    key_cache().clear()


def _version(session: Session) -> tuple[object, ...]:
    row = session.execute(
        select(
            func.count(CodeSigningKey.id),
            func.max(CodeSigningKey.kid),
            func.count(CodeSigningKey.retired_at),
        )
    ).one()
    return tuple(row)


def _load(session: Session, version: tuple[object, ...]) -> _Snapshot:
    keys: dict[str, LoadedKey] = {}
    for row in session.scalars(select(CodeSigningKey)):
        keys[row.kid] = LoadedKey(
            kid=row.kid,
            public=Ed25519PublicKey.from_public_bytes(b64url_decode(row.public_key)),
            x=row.public_key,
            activated_at=as_aware(row.activated_at),
            retired_at=as_aware(row.retired_at) if row.retired_at else None,
            verify_until=as_aware(row.verify_until) if row.verify_until else None,
            private_sealed=row.private_key_sealed,
        )
    return _Snapshot(keys=keys, version=version, checked_at=time.monotonic())


def loaded_keys(session: Session, *, force: bool = False) -> dict[str, LoadedKey]:
    """Every stored key by kid, from the process cache when it is fresh enough."""
    cache = key_cache()
    snap = cache.snapshot
    now = time.monotonic()
    if snap is not None and not force and now - snap.checked_at < policy.key_cache_seconds():
        return snap.keys
    version = _version(session)
    if snap is not None and snap.version == version:
        snap.checked_at = now
        return snap.keys
    fresh = _load(session, version)
    with cache.lock:
        cache.snapshot = fresh
        cache.private = {k: v for k, v in cache.private.items() if k in fresh.keys}
    return fresh.keys


def verification_key(session: Session, kid: str) -> LoadedKey | None:
    """The key named `kid`, re-reading the table once if this process has not seen it."""
    keys = loaded_keys(session)
    if kid in keys:
        return keys[kid]
    cache = key_cache()
    now = time.monotonic()
    if now - cache.forced_at < _FORCED_REFRESH_MIN_SECONDS:
        return None  # an unknown kid must not turn every request into a table read
    cache.forced_at = now
    return loaded_keys(session, force=True).get(kid)


def _current(keys: dict[str, LoadedKey], at: datetime) -> LoadedKey | None:
    signing = [k for k in keys.values() if k.signs_at(at)]
    return max(signing, key=lambda k: (k.activated_at, k.kid)) if signing else None


def private_key(key: LoadedKey) -> Ed25519PrivateKey:
    cache = key_cache()
    private = cache.private.get(key.kid)
    if private is None:
        raw = b64url_decode(sealer().open(key.private_sealed, _SEAL_CONTEXT))
        private = Ed25519PrivateKey.from_private_bytes(raw)
        cache.private[key.kid] = private
    return private


def signing_key(session: Session, at: datetime | None = None) -> tuple[str, Ed25519PrivateKey]:
    """The key that signs at `at` (default now); creates the first key if there is none.

    Creating the first key only flushes: the caller's transaction commits it.
    """
    at = at or utcnow()
    current = _current(loaded_keys(session), at)
    if current is None:
        _lock(session)
        current = _current(loaded_keys(session, force=True), at)
        if current is None:
            _create(session, activated_at=at)
            key_cache().clear()
            current = _current(loaded_keys(session, force=True), at)
    if current is None:  # pragma: no cover - the key was just created
        raise RuntimeError("no signing key")
    return current.kid, private_key(current)


def _lock(session: Session) -> None:
    """Serialise key creation and rotation. SQLite writers are already serialised."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})


def _create(session: Session, *, activated_at: datetime) -> CodeSigningKey:
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    row = CodeSigningKey(
        kid=secrets.token_hex(4),
        public_key=b64url(raw_public),
        private_key_sealed=sealer().seal(b64url(raw_private), _SEAL_CONTEXT),
        activated_at=activated_at,
    )
    session.add(row)
    session.flush()
    return row


def dynamic_overlap() -> timedelta:
    return timedelta(
        seconds=policy.code_lifetime_seconds()
        + policy.allowed_skew_seconds()
        + policy.key_cache_seconds()
    )


def rotate_key(
    session: Session, *, now: datetime | None = None, activate_in: int = 0
) -> CodeSigningKey:
    """Create the next signing key, active `activate_in` seconds from now; retire the others
    at that instant, each verifying dynamic codes for one more code lifetime (plus skew)."""
    now = now or utcnow()
    switch_at = now + timedelta(seconds=max(0, activate_in))
    _lock(session)
    for row in session.scalars(
        select(CodeSigningKey).where(
            or_(CodeSigningKey.retired_at.is_(None), CodeSigningKey.retired_at > switch_at)
        )
    ):
        row.retired_at = switch_at
        row.verify_until = switch_at + dynamic_overlap()
    new = _create(session, activated_at=switch_at)
    key_cache().clear()
    return new


def published_jwks(session: Session, *, now: datetime | None = None) -> list[dict[str, str]]:
    """Public JWKs of every key that can still verify a code: current and pending keys,
    retired keys within their overlap, and keys named by an active card. Newest first."""
    now = now or utcnow()
    carded = select(IntegrityCard.kid).where(IntegrityCard.status == "active")
    rows = session.scalars(
        select(CodeSigningKey)
        .where(
            or_(
                CodeSigningKey.verify_until.is_(None),
                CodeSigningKey.verify_until >= now,
                CodeSigningKey.kid.in_(carded),
            )
        )
        .order_by(CodeSigningKey.activated_at.desc(), CodeSigningKey.kid)
    )
    return [jwk(row.kid, row.public_key) for row in rows]


def jwk(kid: str, x: str) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}
