"""Fault-injection tools: a cuttable TCP proxy, a private gunicorn, worker discovery."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.live import ROOT, _free_port


class TcpProxy:
    """127.0.0.1:port -> target, in threads. `cut()` closes every connection and refuses new
    ones (what a stopped database server looks like); `restore()` listens again."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self._lock = threading.Lock()
        self._pipes: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.restore()

    def _listen(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while this connection was opening
                    client.close()
                    upstream.close()
                    return
                self._pipes += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except (OSError, ValueError):
            # cut() closes the pipes from its own thread: a socket closed between two turns
            # of this loop has fd -1, and select() raises ValueError for it, not OSError.
            return
        finally:
            for s in (a, b):
                s.close()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._listen, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            # close() alone does not wake a thread blocked in accept() on Linux, and the
            # socket keeps accepting until it returns; shutdown() wakes it at once.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            pipes, self._pipes = self._pipes, []
        for s in pipes:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._stop.set()
        self.cut()


class Gunicorn:
    """A private gunicorn over an existing database (already migrated and filled)."""

    def __init__(self, database_url: str, log_path: Path, workers: int = 2, **env: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "wsgi:app",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": database_url,
                "LOG_LEVEL": "INFO",
                "RATELIMIT_ENABLED": "0",
                **env,
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # still booting
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("gunicorn did not start:\n" + log_path.read_text())
            time.sleep(0.2)

    def stop(self) -> None:
        """Idempotent: a test's finaliser may call it again after the test did."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


def children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (gunicorn's workers, for its master)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:  # the process ended while we looked
            continue
        if re.search(rf"^PPid:\s+{pid}$", text, re.M):
            found.append(int(status.parent.name))
    return sorted(found)


def gunicorn_master(port: int) -> int:
    """The master of the gunicorn bound to 127.0.0.1:`port` (found by its command line)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gunicorn" in b" ".join(args) and f"127.0.0.1:{port}".encode() in args:
            pid = int(cmdline.parent.name)
            status = (cmdline.parent / "status").read_text()
            ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
            parent_args = Path(f"/proc/{ppid}/cmdline").read_bytes() if ppid > 1 else b""
            if f"127.0.0.1:{port}".encode() not in parent_args:
                return pid
    raise LookupError(f"no gunicorn on port {port}")


def pg_port(database_url: str) -> int:
    from sqlalchemy.engine import make_url

    return make_url(database_url).port or 5432


def via_proxy(database_url: str, proxy: TcpProxy) -> str:
    from sqlalchemy.engine import make_url

    return (
        make_url(database_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )
