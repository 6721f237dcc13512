"""Pieces every JSON API shares: keyset page arguments and base schemas."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from flask import Request
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from webargs.flaskparser import FlaskParser

from mall.schema_base import BaseSchema


class PageArgs(BaseSchema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


def page(items: list[Any], limit: int, key: str = "id") -> dict[str, Any]:
    """A keyset page: `next_cursor` is the last row's key when the page is full."""
    next_cursor = getattr(items[-1], key) if len(items) == limit else None
    return {"items": items, "next_cursor": next_cursor}


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, with every unparseable JSON body answered as invalid JSON.

    The stdlib decoder raises ValueError (not JSONDecodeError) for an integer of more than
    4300 digits and RecursionError for very deep nesting; webargs lets both escape as a 500.
    Validation failures answer 400 `validation_error`, as the contracts say (webargs' default
    is 422), and the OpenAPI description documents them so.
    """

    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: Request) -> Any:
        try:
            data = super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError):
            abort(400, messages={"json": ["Invalid JSON body."]})
        if _has_lone_surrogate(data):
            # "\ud800" is valid JSON but no valid text: it cannot be stored or logged.
            abort(400, messages={"json": ["Invalid text in JSON body."]})
        return data


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class Blueprint(flask_smorest.Blueprint):
    """The project's API blueprint: flask-smorest with our arguments parser."""

    ARGUMENTS_PARSER = ArgumentsParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        # Given a Schema class, webargs instantiates it on every request, and marshmallow
        # deep-copies the declared fields each time; one instance serves every request
        # (a schema keeps no state between loads).
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"description": "stable, machine-readable"})
    message = fields.String(required=True, metadata={"description": "zh-CN, or en on request"})
    details = fields.Dict(required=True)


class ErrorEnvelope(Schema):
    """The one error envelope every API answers with (POS contract, section 3)."""

    error = fields.Nested(ErrorDetail, required=True)


class MallApi(flask_smorest.Api):
    """flask-smorest's Api, documenting our error envelope as every default error response."""

    ERROR_SCHEMA = ErrorEnvelope
