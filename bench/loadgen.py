"""A small multi-process HTTP load generator for bench/run.py (loopback only, bounded).

Each child process holds one `http.client` connection (kept alive when the server allows it;
gunicorn's sync workers close after every response, and http.client reconnects) and sends
signed POS requests exactly as the contract says (pos_adapter.client.sign). Two modes:

- closed loop (`rate=None`): every process sends its next request as soon as the previous one
  is answered, for `seconds`: the maximum rate the server sustains;
- open loop (`rate=R`): the processes share a fixed schedule of R requests per second and a
  request's latency is measured from its *scheduled* time, so a stalled server shows up in
  the percentiles instead of silently slowing the generator (no coordinated omission).

Every run is bounded by `seconds` and by the items given; nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pos_adapter.client import sign


@dataclass
class Job:
    kind: str  # "scan", "payments", "baseline" (one-row read) or "write-baseline"
    port: int
    seconds: float
    processes: int
    rate: float | None = None  # total requests per second; None = as fast as answered
    # scan: (terminal_id, secret, code) reused round-robin; payments: each used once
    items: list[tuple[str, str, str]] = field(default_factory=list)
    amount_fen: int = 1_000


@dataclass
class Result:
    kind: str
    rate: float | None
    seconds: float
    count: int
    statuses: Counter[int]
    errors: int
    latencies_ms: list[float]

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _request(
    kind: str, item: tuple[str, str, str] | None, amount: int
) -> tuple[str, str, bytes, dict[str, str]]:
    if kind == "baseline":
        return "GET", "/bench/one-row", b"", {}
    if kind == "write-baseline":
        return "POST", "/bench/one-write", b"{}", {"Content-Type": "application/json"}
    assert item is not None, "scan and payments need (terminal, secret, code) items"
    terminal_id, secret, code = item
    body: dict[str, Any] = {"code": code}
    if kind == "scan":
        path = "/pos/v1/scan"
    else:
        path = "/pos/v1/payments"
        body = {"code": code, "amount_fen": amount, "items": [], "use_integrity": True}
    data = json.dumps(body).encode()
    ts, nonce = str(int(time.time())), secrets.token_urlsafe(18)
    headers = {
        "X-Terminal-Id": terminal_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(secret, "POST", path, ts, nonce, data),
        "Content-Type": "application/json",
    }
    if kind == "payments":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    return "POST", path, data, headers


def _child(job: Job, index: int, start_at: float) -> tuple[int, dict[int, int], int, list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=10)
    mine = job.items[index :: job.processes] if job.items else []
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    errors = sent = 0
    interval = job.processes / job.rate if job.rate else 0.0
    while time.monotonic() < start_at:
        time.sleep(0.001)
    deadline = start_at + job.seconds
    scheduled = start_at + (interval * index / job.processes if interval else 0.0)
    while True:
        if job.kind == "payments" and sent >= len(mine):
            break
        if interval:
            scheduled += interval
            if scheduled >= deadline:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elif time.monotonic() >= deadline:
            break
        item = mine[sent % len(mine)] if mine else None
        method, path, body, headers = _request(job.kind, item, job.amount_fen)
        begun = scheduled if interval else time.monotonic()
        sent += 1
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            statuses[resp.status] += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        latencies.append((time.monotonic() - begun) * 1000)
    conn.close()
    return sent, dict(statuses), errors, latencies


def _child_entry(args: tuple[Job, int, float]) -> tuple[int, dict[int, int], int, list[float]]:
    return _child(*args)


def run(job: Job) -> Result:
    """Drive `job` from `job.processes` child processes; returns the merged result."""
    ctx = multiprocessing.get_context("fork")
    start_at = time.monotonic() + 0.5  # every child starts together
    with ctx.Pool(job.processes) as pool:
        parts = pool.map(_child_entry, [(job, i, start_at) for i in range(job.processes)])
    elapsed = job.seconds
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    count = errors = 0
    for sent, st, err, lat in parts:
        count += sent
        statuses.update(st)
        errors += err
        latencies.extend(lat)
    if job.kind == "payments":
        # bounded by items, not time: the run lasted until the last child finished
        elapsed = max(0.001, time.monotonic() - start_at)
    return Result(job.kind, job.rate, elapsed, count, statuses, errors, latencies)


def describe(result: Result) -> dict[str, Any]:
    return {
        "kind": result.kind,
        "rate": result.rate,
        "seconds": round(result.seconds, 2),
        "requests": result.count,
        "ok": result.ok,
        "rps": round(result.rps, 1),
        "statuses": dict(result.statuses),
        "errors": result.errors,
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
    }


# ---------------------------------------------------------------- wrk, for maximum rates

UNSIGNED = frozenset({"baseline", "write-baseline"})  # one request, repeated
CREATED = {"payments": 201, "write-baseline": 201}  # the 2xx each kind answers

WRK_SCRIPT = Path(__file__).with_name("wrk_signed.lua")
_WRK_LINE = re.compile(r"^wrk: (.*)$", re.M)


def wrk_available() -> str | None:
    """wrk's path: on the PATH, or installed from Debian's packages when we may (root)."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        found = shutil.which("wrk")
    return found


def run_wrk(job: Job, wrk: str, threads: int = 2) -> Result:
    """A closed-loop run with wrk (C, so the generator takes little of the 2 cores): every
    request pre-signed here just before the run, each with its own nonce, sent once."""
    url = f"http://127.0.0.1:{job.port}"
    with tempfile.TemporaryDirectory(prefix="wrk-") as tmp:
        # Scans may reuse codes, so enough distinct requests for 4,000 a second; each payment
        # spends its own code; a baseline is one request, repeated (a copy per thread).
        if job.kind == "payments":
            count = len(job.items)
        else:
            count = 64 if job.kind in UNSIGNED else int(4_000 * job.seconds)
        args = [wrk, f"-t{threads}", f"-c{job.processes}", f"-d{job.seconds:.0f}s"]
        args += ["-s", str(WRK_SCRIPT), url, "--", _write_requests(tmp, job, count), str(threads)]
        out = subprocess.run(args, capture_output=True, text=True, timeout=job.seconds + 60)
    fields: dict[str, int] = {}
    for line in _WRK_LINE.findall(out.stdout):
        for name, value in re.findall(r"(\w+) (\d+)", line):
            fields[name] = fields.get(name, 0) + int(value)
    seconds = fields.get("duration_us", int(job.seconds * 1e6)) / 1e6
    statuses: Counter[int] = Counter({CREATED.get(job.kind, 200): fields["ok"]})
    if fields.get("other"):
        statuses[0] = fields["other"]  # wrk counts them, without telling which status
    errors = sum(fields.get(k, 0) for k in ("connect", "read", "write", "timeout"))
    return Result(job.kind, None, seconds, fields["requests"], statuses, errors, [])


def _write_requests(tmp: str, job: Job, count: int) -> str:
    path = os.path.join(tmp, f"requests-{count}.tsv")
    with open(path, "w", encoding="utf-8") as out:
        for i in range(max(count, 1)):
            item = job.items[i % len(job.items)] if job.items else None
            method, target, body, headers = _request(job.kind, item, job.amount_fen)
            fields = [method, target, body.decode()] + [f"{k}: {v}" for k, v in headers.items()]
            out.write("\t".join(fields) + "\n")
    return path
