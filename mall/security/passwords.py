"""Password and PIN hashing (argon2id) and PIN strength rules."""

from __future__ import annotations

from itertools import pairwise

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# PINs are only 6 digits; their protection is the lockout, not the hash cost. A lighter
# argon2 profile keeps the till fast (a PIN is checked on every card payment).
_passwords = PasswordHasher()
_pins = PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _passwords.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_pin(pin: str) -> str:
    return _pins.hash(pin)


def verify_pin(stored: str | None, pin: str) -> bool:
    if not stored:
        return False
    try:
        return _pins.verify(stored, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def pin_is_acceptable(pin: str) -> bool:
    """6 ASCII digits, not all the same, not an ascending or descending run."""
    if len(pin) != 6 or not pin.isascii() or not pin.isdigit():
        return False
    if len(set(pin)) == 1:
        return False
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    return steps not in ({1}, {-1})
