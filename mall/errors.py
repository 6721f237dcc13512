"""Typed domain errors and the one error envelope every API answers with.

`{"error": {"code": "...", "message": "...", "details": {...}}}`: `code` is stable and
machine-readable, `message` follows Accept-Language (zh-CN by default, en on request).
Services raise `DomainError` subclasses; `register_error_handlers` is the one place that
maps them, and everything else that can go wrong, to statuses and codes.
"""

from __future__ import annotations

from typing import Any

import structlog
from flask import Flask, Response, jsonify, request
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

log = structlog.get_logger(__name__)

# The message for every code; the code is the contract, the message is for people.
MESSAGES: dict[str, LazyString] = {
    "validation_error": _l("请求参数有误"),
    "bad_request": _l("请求格式有误"),
    "idempotency_key_required": _l("缺少 Idempotency-Key 请求头"),
    "unauthorized": _l("需要登录"),
    "invalid_credentials": _l("手机号或密码错误"),
    "invalid_token": _l("登录凭证无效或已过期"),
    "login_locked": _l("登录失败次数过多,请稍后再试"),
    "forbidden": _l("没有权限执行此操作"),
    "csrf_failed": _l("页面已过期,请刷新后重试"),
    "terminal_unknown": _l("终端未登记"),
    "terminal_disabled": _l("终端已停用"),
    "stale_request": _l("请求时间与服务器相差过大"),
    "replayed_request": _l("重复的请求"),
    "bad_signature": _l("请求签名错误"),
    "holder_suspended": _l("该户信用已冻结或撤销"),
    "level_too_low": _l("信用等级不足"),
    "pin_required": _l("请输入密码"),
    "pin_invalid": _l("密码错误"),
    "pin_locked": _l("密码错误次数过多,已锁定30分钟"),
    "pin_too_weak": _l("密码须为6位数字,且不能全部相同或为连续数字"),
    "partner_not_eligible": _l("该商户不支持此项业务"),
    "benefit_not_applicable": _l("该权益不适用"),
    "not_found": _l("未找到"),
    "holder_not_found": _l("未找到该信用户"),
    "method_not_allowed": _l("不支持该请求方法"),
    "idempotency_conflict": _l("同一 Idempotency-Key 的请求内容不同"),
    "request_in_progress": _l("相同请求正在处理中"),
    "insufficient_points": _l("积分不足"),
    "insufficient_funds": _l("余额不足"),
    "out_of_stock": _l("库存不足"),
    "code_already_used": _l("该信用码已使用"),
    "invalid_state": _l("当前状态不允许此操作"),
    "refund_exceeds_payment": _l("退款超过原支付金额"),
    "benefit_limit_reached": _l("已达到该权益的使用次数上限"),
    "reservation_limit_reached": _l("超出预约数量上限"),
    "record_too_old": _l("离线记录已超过72小时"),
    "over_floor_limit": _l("超出离线交易限额"),
    "conflict": _l("数据冲突"),
    "own_batch": _l("不能审批自己录入的积分批次"),
    "same_person": _l("须由另一位管理员办理此环节"),
    "code_expired": _l("信用码已过期,请刷新"),
    "payload_too_large": _l("请求内容过大"),
    "unsupported_media_type": _l("请使用 JSON 格式提交"),
    "invalid_code": _l("无效的信用码"),
    "rate_limited": _l("请求过于频繁,请稍后再试"),
    "internal_error": _l("服务器内部错误"),
    "service_unavailable": _l("服务暂时不可用,请稍后再试"),
}

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


class DomainError(Exception):
    """A business rule said no. Subclasses fix the HTTP status; `code` names the rule.

    `keeps_changes`: the refusal itself recorded something that must outlive the request (a
    wrong PIN or password counted, a stolen token family revoked). The request's session is
    committed before the error is answered instead of rolled back; a service raising such an
    error has flushed only that record.
    """

    status = 400
    code = "bad_request"
    keeps_changes = False

    def __init__(
        self,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        message: str | None = None,
        *,
        keeps_changes: bool | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if keeps_changes is not None:
            self.keeps_changes = keeps_changes
        self.details = details or {}
        self.message = message
        super().__init__(self.code)


class ValidationFailed(DomainError):
    status = 400
    code = "validation_error"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Gone(DomainError):
    status = 410
    code = "code_expired"


class Unprocessable(DomainError):
    status = 422
    code = "invalid_code"


class TooManyRequests(DomainError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(DomainError):
    """A store the request depends on (the database, Redis) cannot be reached: try again."""

    status = 503
    code = "service_unavailable"


def error_body(
    code: str, details: dict[str, Any] | None = None, message: str | None = None
) -> dict[str, Any]:
    text = message if message is not None else str(MESSAGES.get(code, code))
    return {"error": {"code": code, "message": text, "details": details or {}}}


def error_response(
    status: int, code: str, details: dict[str, Any] | None = None, message: str | None = None
) -> Response:
    resp = jsonify(error_body(code, details, message))
    resp.status_code = status
    return resp


def _validation_details(exc: HTTPException) -> dict[str, Any]:
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, dict):
        return {}
    # webargs nests messages by location ("json", "query"...); callers want field names.
    fields: dict[str, Any] = {}
    for location_messages in messages.values():
        if isinstance(location_messages, dict):
            fields.update(location_messages)
        else:  # a message about the body as a whole, such as unparseable JSON
            fields.setdefault("body", []).extend(location_messages)
    return {"fields": fields}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Response:
        if exc.keeps_changes:
            from mall.extensions import db  # here: mall.extensions imports this module

            db.session.commit()
        return error_response(exc.status, exc.code, exc.details, exc.message)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status in (400, 422) and _validation_details(exc):
            # webargs' schema failures (our parser uses 400; 422 from any other parser).
            return error_response(400, "validation_error", _validation_details(exc))
        if (
            status == 400
            and request.is_json is False
            and request.method in {"POST", "PUT", "PATCH"}
        ):
            return error_response(400, "bad_request")
        code = _STATUS_CODES.get(status, "bad_request" if status < 500 else "internal_error")
        resp = error_response(status, code)
        if status == 405 and exc.get_response().headers.get("Allow"):
            resp.headers["Allow"] = exc.get_response().headers["Allow"]
        return resp

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError) -> Response:
        log.error("database_unavailable", error_class=type(exc.orig).__name__)
        return error_response(503, "service_unavailable")

    @app.errorhandler(DataError)
    @app.errorhandler(OverflowError)
    def _value_out_of_range(exc: Exception) -> Response:
        # A value the database cannot hold (an id beyond BIGINT, text it cannot encode):
        # the input is wrong, not the server. SQLite raises OverflowError before the query.
        log.info("value_out_of_range", error_class=type(exc).__name__)
        return error_response(400, "validation_error", {"fields": {}})

    @app.errorhandler(DBAPIError)
    def _db_error(exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return error_response(503, "service_unavailable")
        # Statement text and parameters may carry personal data: log the class only.
        log.error("database_error", error_class=type(exc.orig).__name__)
        return error_response(500, "internal_error")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled_error", error_class=type(exc).__name__)
        return error_response(500, "internal_error")
