"""Encryption at rest and keyed blind indexes for personal data.

Values are sealed with AES-256-GCM (cryptography's AESGCM) under the deployment's
ENCRYPTION_KEY; the stored form is `v1:` + urlsafe base64 of nonce || ciphertext. Exact
search uses a blind index: HMAC-SHA256 under a separate BLIND_INDEX_KEY over a normalised
value, so the database can match "this phone" without holding the phone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

_PREFIX = "v1:"


class Sealer:
    def __init__(self, key_b64: str, blind_key: str) -> None:
        key = base64.urlsafe_b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("encryption key must be 32 bytes")
        self._aead = AESGCM(key)
        self._blind_key = blind_key.encode()

    def seal(self, plaintext: str, context: str = "") -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plaintext.encode(), context.encode() or None)
        return _PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()

    def open(self, sealed: str, context: str = "") -> str:
        if not sealed.startswith(_PREFIX):
            raise ValueError("unknown sealed format")
        raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :])
        return self._aead.decrypt(raw[:12], raw[12:], context.encode() or None).decode()

    def blind_index(self, value: str, purpose: str) -> str:
        normalised = normalise(value)
        mac = hmac.new(self._blind_key, f"{purpose}\x00{normalised}".encode(), hashlib.sha256)
        return mac.hexdigest()[:40]


def normalise(value: str) -> str:
    """Fold full-width digits and letters, drop spaces and dashes, upper-case the X of IDs."""
    folded = unicodedata.normalize("NFKC", value)
    return "".join(ch for ch in folded if not ch.isspace() and ch != "-").upper()


def sealer() -> Sealer:
    ext = current_app.extensions.get("mall_sealer")
    if ext is None:
        ext = Sealer(current_app.config["ENCRYPTION_KEY"], current_app.config["BLIND_INDEX_KEY"])
        current_app.extensions["mall_sealer"] = ext
    return ext
