"""Canonical hashes: the request hash that makes an idempotency key exact, and the entry hash
that chains every township's entries so an edit, deletion or insertion behind the
application's back is detected by `verify`.

Both are SHA-256 over an unambiguous serialisation: JSON (request) or netstrings (entry
header) for the text fields, which may contain any character, and
`account:asset:amount:balance_after;` for postings, sorted by account (an entry touches an
account at most once), so the writer and `verify` agree however the database returns the rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from mall.clock import as_aware

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _json(values: list[object]) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


def epoch_micros(at: datetime) -> int:
    """Exact integer microseconds; a float would round differently on another machine."""
    return (as_aware(at) - _EPOCH) // _MICROSECOND


def request_hash(
    *,
    kind: str,
    legs: Iterable[tuple[int, int]],
    source_type: str | None,
    source_id: str | None,
    reverses_entry_id: int | None = None,
    hold_id: int | None = None,
) -> str:
    """What a caller asked for, for comparing a replayed idempotency key: the money movement
    and what it is for. Actor, reason and business date are descriptive and may differ on a
    retry (another cashier, after midnight) without making it a different request."""
    parts: list[object] = [kind, source_type, source_id, reverses_entry_id, hold_id]
    parts.extend(f"{a}:{m}" for a, m in sorted(legs))
    return hashlib.sha256(_json(parts)).hexdigest()


def hold_request_hash(
    *,
    account_id: int,
    counter_account_id: int,
    amount: int,
    source_type: str | None,
    source_id: str | None,
) -> str:
    parts: list[object] = ["hold", account_id, counter_account_id, amount, source_type, source_id]
    return hashlib.sha256(_json(parts)).hexdigest()


def entry_header(
    *,
    township_id: int,
    chain_seq: int,
    kind: str,
    actor: str,
    reason: str,
    source_type: str | None,
    source_id: str | None,
    idempotency_key: str | None,
    request_hash: str,
    reverses_entry_id: int | None,
    hold_id: int | None,
    created_at: datetime,
    business_date: date,
) -> bytes:
    return header_from_parts(
        township_id,
        chain_seq,
        kind,
        actor,
        reason,
        source_type,
        source_id,
        idempotency_key,
        request_hash,
        reverses_entry_id,
        hold_id,
        epoch_micros(created_at),
        business_date.isoformat(),
    )


def header_from_parts(
    township_id: int,
    chain_seq: int,
    kind: str,
    actor: str,
    reason: str,
    source_type: str | None,
    source_id: str | None,
    idempotency_key: str | None,
    request_hash: str,
    reverses_entry_id: int | None,
    hold_id: int | None,
    created_micros: int,
    business_date_iso: str,
) -> bytes:
    """The entry's fields as netstrings (`~` for NULL), positional: `verify` calls this once
    per entry, with the time and date already converted by the database."""
    return (
        f"{township_id}|{chain_seq}|{len(kind)}:{kind}|{len(actor)}:{actor}"
        f"|{len(reason)}:{reason}"
        f"|{'~' if source_type is None else f'{len(source_type)}:{source_type}'}"
        f"|{'~' if source_id is None else f'{len(source_id)}:{source_id}'}"
        f"|{'~' if idempotency_key is None else f'{len(idempotency_key)}:{idempotency_key}'}"
        f"|{request_hash}|{reverses_entry_id}|{hold_id}|{created_micros}|{business_date_iso}"
    ).encode()


def postings_part(postings: Iterable[tuple[int, str, int, int]]) -> bytes:
    """(account_id, asset, amount, balance_after) in any order."""
    return "".join(f"{a}:{s}:{m}:{b};" for a, s, m, b in sorted(postings)).encode()


def chain_hash(prev_hash: str, header: bytes, postings: bytes) -> str:
    return hashlib.sha256(b"\n".join((prev_hash.encode(), header, postings))).hexdigest()
