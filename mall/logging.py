"""Structured logging (structlog) with a last-line scrubber for personal data.

Code never logs names, ID numbers or phones on purpose; the scrubber masks anything that
still looks like a mainland ID number or mobile number, in case a value slips through an
exception message or a third-party log line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_ID_NUMBER = re.compile(r"(?<!\d)(\d{4})\d{10}(\d{3}[\dXx])(?!\d)")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def scrub(text: str) -> str:
    text = _ID_NUMBER.sub(r"\1**********\2", text)
    return _PHONE.sub(r"\1****\2", text)


def _scrub_event(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = scrub(value)
    return event


class _ScrubFilter(logging.Filter):
    """Applies the same masking to stdlib records (werkzeug, gunicorn, sqlalchemy)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):
            # structlog's own event, which the formatter needs as a dict: `_scrub_event`
            # masks it, after the exception (if any) has been rendered into it.
            return True
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _scrub_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_ScrubFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_mall", False):
            root.removeHandler(old)
    handler._mall = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
