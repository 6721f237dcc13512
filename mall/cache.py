"""Short-lived per-process caches of rarely changing rows read on the hot POS path.

A till scans many times a minute; the rows that say who the terminal is and what the benefit
list offers change a few times a year. Each gunicorn worker keeps what it read for at most
`HOT_CACHE_SECONDS` (5 s by default; 0 turns caching off), so a change made by another worker
or host is seen within that time. A change this process flushes to one of a cache's models
drops that cache at once (SQLAlchemy's mapper events), so a worker never serves back its own
stale write, and tests see their changes immediately.

Reads use these caches. A write (payment, refund...) reads the benefit list afresh, and uses
cached terminal rows only with their row versions, which its transaction confirms
(pos_adapter/auth.py): a disabled terminal or a withdrawn benefit stops money moving at once.

Entries are values, never ORM instances bound to a session: callers store snapshots (see
`detached_copy`) and read their columns detached, or attach them to their own session with
`merge(load=False)`. A snapshot is shared by the worker's requests: never change one.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from cachetools import TTLCache
from flask import Flask, current_app
from sqlalchemy import event, inspect
from sqlalchemy.orm import make_transient_to_detached

T = TypeVar("T")
DEFAULT_SECONDS = 5
_MAXSIZE = 4096


class HotCache:
    """One named cache, per app (each app has its own database), dropped on flushes of
    `models`."""

    def __init__(
        self, name: str, models: tuple[type, ...], timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.models = models
        self.timer = timer
        self._lock = threading.Lock()
        self._per_app: weakref.WeakKeyDictionary[Flask, TTLCache[Hashable, Any]] = (
            weakref.WeakKeyDictionary()
        )
        for model in models:
            for change in ("after_insert", "after_update", "after_delete"):
                event.listen(model, change, self._changed)

    def _changed(self, _mapper: Any, _connection: Any, _target: Any) -> None:
        self.clear()

    def _store(self) -> TTLCache[Hashable, Any] | None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        store = self._per_app.get(app)
        if store is None:
            seconds = int(app.config.get("HOT_CACHE_SECONDS", DEFAULT_SECONDS))
            if seconds <= 0:
                return None
            store = self._per_app[app] = TTLCache(
                maxsize=_MAXSIZE, ttl=seconds, timer=lambda: self.timer()
            )
        return store

    def get_or_load(self, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value for `key`, or `load()`'s result, cached unless it is None."""
        store = self._store()
        if store is None:
            return load()
        with self._lock:
            found = store.get(key)
        if found is not None:
            return found
        value = load()
        if value is not None:
            with self._lock:
                store[key] = value
        return value

    def discard(self, key: Hashable) -> None:
        store = self._store()
        if store is not None:
            with self._lock:
                store.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            for store in self._per_app.values():
                store.clear()


def detached_copy(instance: T) -> T:
    """A session-free copy of a loaded ORM instance (its column values), safe to keep in a
    cache and to attach to any session with `session.merge(copy, load=False)`."""
    mapper = inspect(type(instance))
    copy = mapper.class_manager.new_instance()
    for attr in mapper.column_attrs:
        setattr(copy, attr.key, getattr(instance, attr.key))
    make_transient_to_detached(copy)
    return copy
