"""Pieces every JSON API shares: keyset page arguments and base schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, pre_load, validate


class BaseSchema(Schema):
    """Unknown keys are dropped (clients may be newer than us); strings are stripped."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _strip_strings(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return data


class PageArgs(BaseSchema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


def page(items: list[Any], limit: int, key: str = "id") -> dict[str, Any]:
    """A keyset page: `next_cursor` is the last row's key when the page is full."""
    next_cursor = getattr(items[-1], key) if len(items) == limit else None
    return {"items": items, "next_cursor": next_cursor}
