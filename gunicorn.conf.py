"""Production gunicorn settings; each may be overridden by the environment.

Two things gunicorn does itself are changed here, because they happen before the app sees a
request: its access log escapes control characters (a path with %0a must not write a forged
line), and the errors it answers without the app (a request line over 4 KB, headers too
large, a malformed request) use the service's JSON error envelope instead of an HTML page.
"""

import importlib.util
import json
import multiprocessing
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import gunicorn.util
from gunicorn.glogging import Logger

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 100
# The app logs structured lines itself; gunicorn's access log keeps only path and status,
# and never a query string that might carry a phone number.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
errorlog = "-"

# Control characters (C0, DEL, C1), the Unicode line and paragraph separators, the quote
# that delimits the request in the access log, and the backslash that starts an escape.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029"\\]')


def escape_log_text(text: str) -> str:
    """`text` on one line: every unsafe character as \\xHH or \\uHHHH, as nginx logs it."""
    return _UNSAFE.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text
    )


class EscapingLogger(Logger):
    """gunicorn's logger, with every text field of an access line escaped."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: escape_log_text(v) if isinstance(v, str) else v for k, v in atoms.items()}


logger_class = EscapingLogger

# The errors gunicorn answers itself, in the API's envelope (mall/errors.py).
_GUNICORN_ERRORS = {
    414: ("uri_too_long", "请求地址过长"),
    431: ("headers_too_large", "请求头过大"),
    403: ("forbidden", "没有权限执行此操作"),
    500: ("internal_error", "服务器内部错误"),
}


def write_json_error(sock, status_int, reason, mesg):
    code, message = _GUNICORN_ERRORS.get(status_int, ("bad_request", "请求格式有误"))
    body = json.dumps(
        {"error": {"code": code, "message": message, "details": {}}}, ensure_ascii=False
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nCache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    gunicorn.util.write_nonblock(sock, head + body)


# gunicorn's workers call util.write_error for these answers and offer no hook for them.
gunicorn.util.write_error = write_json_error
preload_app = False


def _mall_config() -> ModuleType:
    """mall/config.py on its own (standard library only): importing the `mall` package would
    load the whole app into the master, which preload_app=False keeps out of it."""
    path = Path(__file__).resolve().parent / "mall" / "config.py"
    spec = importlib.util.spec_from_file_location("_mall_config_for_gunicorn", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_starting(server: Any) -> None:
    """Before any worker starts: production refuses rate limits counted per worker process
    (RATELIMIT_STORAGE_URI=memory:// with more than one worker). gunicorn prints the error
    and exits with status 1."""
    config = _mall_config()
    try:
        config.check_shared_rate_limits(os.environ, server.cfg.workers)
    except config.ConfigError as exc:
        raise RuntimeError(str(exc)) from None
