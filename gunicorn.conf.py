"""Production gunicorn settings; each may be overridden by the environment."""

import importlib.util
import multiprocessing
import os
from pathlib import Path
from types import ModuleType
from typing import Any

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
