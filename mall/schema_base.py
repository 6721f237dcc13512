"""The base of every marshmallow schema: the wire form of the domain's objects, shared by the
channels (the staff and farmer APIs, the till) and the domain's own wire views."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, pre_load


class BaseSchema(Schema):
    """Unknown keys are dropped (clients may be newer than us); strings are stripped."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _strip_strings(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return data
