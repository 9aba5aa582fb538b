"""A small closed-loop HTTP load generator (standard library only), run by bench/run.py.

One process runs ``--connections`` threads; each keeps one HTTP/1.1 keep-alive connection and
sends the same request back to back (reconnecting if the server closes it). All processes of a
run share the same wall-clock window: they start sending at ``--begin`` (warm-up), count only
responses that complete in [``--start``, ``--end``), and stop by themselves at ``--end``.
Prints one JSON object on stdout: status counts, exceptions and latencies (µs) inside the window.

With ``--body-template`` the body varies per request (see ``render_body``): ``{n}`` becomes a
token unique across the whole harness run (``<run>-<proc>-<thread>-<i>``) and ``{ts_ms}`` a Unix
time in milliseconds that is unique too (a fixed base in the past plus a dense sequence number),
e.g. a new dedupe key per request, or a new delivery of the same alert. The harness gives every
measured run its own ``--run-id`` and every load process its own ``--proc-index``.

Loopback only: any host other than 127.0.0.1 / ::1 / localhost is refused.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import sys
import threading
import time
from collections import Counter

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
PER_RUN = 10_000_000  # sequence numbers a run may use (far above what a 600 s window can send)


class Template:
    """A request body with placeholders, split once so rendering is a join (cheap next to a request)."""

    def __init__(self, raw: bytes, *, run_id: int, proc_index: int, procs: int, thread_index: int, threads: int,
                 base_ms: int):
        if not 0 <= proc_index < procs or not 0 <= thread_index < threads:
            raise ValueError("process/thread index out of range")
        self.parts = re.split(rb"(\{n\}|\{ts_ms\})", raw)
        self.prefix = f"{run_id}-{proc_index}-{thread_index}-"
        self.slot, self.slots = proc_index * threads + thread_index, procs * threads
        self.run_base = base_ms + run_id * PER_RUN

    def render(self, i: int) -> bytes:
        """The body of this thread's i-th request: unique {n} and {ts_ms} across runs, processes and threads."""
        seq = i * self.slots + self.slot
        if seq >= PER_RUN:
            raise OverflowError("more requests in one run than the sequence numbers allow")
        n, ts = (self.prefix + str(i)).encode(), str(self.run_base + seq).encode()
        return b"".join(n if p == b"{n}" else ts if p == b"{ts_ms}" else p for p in self.parts)


def render_body(raw: bytes, *, run_id: int, proc_index: int = 0, procs: int = 1, thread_index: int = 0,
                threads: int = 1, base_ms: int, i: int = 0) -> bytes:
    """One rendered body (the harness uses it for its pre-flight request, with a run id of its own)."""
    return Template(raw, run_id=run_id, proc_index=proc_index, procs=procs, thread_index=thread_index,
                    threads=threads, base_ms=base_ms).render(i)


def _worker(host, port, method, path, body, template, headers, t_begin, t_start, t_end, out, lock):
    statuses: Counter = Counter()
    exceptions: Counter = Counter()
    latencies: list[int] = []
    conn = http.client.HTTPConnection(host, port, timeout=10)
    pc = time.perf_counter
    while pc() < t_begin:
        time.sleep(min(0.01, max(0.0, t_begin - pc())))
    i = 0
    while True:
        if template is not None:
            body = template.render(i)
            i += 1
        t0 = pc()
        if t0 >= t_end:
            break
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except Exception as exc:  # counted, then a fresh connection
            t1 = pc()
            if t_start <= t1 < t_end:
                exceptions[type(exc).__name__] += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            time.sleep(0.001)
            continue
        t1 = pc()
        if t_start <= t1 < t_end:
            statuses[status] += 1
            latencies.append(int((t1 - t0) * 1e6))
    conn.close()
    with lock:
        out["statuses"].update(statuses)
        out["exceptions"].update(exceptions)
        out["latencies_us"].extend(latencies)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--method", default="GET")
    ap.add_argument("--path", required=True)
    ap.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    ap.add_argument("--body-b64", default="", help="request body, base64")
    ap.add_argument("--body-template", action="store_true",
                    help="the body has {n} / {ts_ms} placeholders, rendered uniquely per request")
    ap.add_argument("--run-id", type=int, default=1, help="unique per measured run of the harness (>= 1)")
    ap.add_argument("--proc-index", type=int, default=0, help="this load process's index among --procs")
    ap.add_argument("--procs", type=int, default=1, help="load processes in this run")
    ap.add_argument("--base-ms", type=int, default=0, help="Unix ms that {ts_ms} counts up from")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--begin", type=float, required=True, help="epoch seconds: start sending (warm-up)")
    ap.add_argument("--start", type=float, required=True, help="epoch seconds: start counting")
    ap.add_argument("--end", type=float, required=True, help="epoch seconds: stop")
    a = ap.parse_args(argv)
    if a.host not in LOOPBACK:
        ap.error("load targets loopback only")
    if not (a.begin <= a.start < a.end) or a.end - time.time() > 600:
        ap.error("need begin <= start < end, ending within 10 minutes")

    headers = {}
    for h in a.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    body = base64.b64decode(a.body_b64) if a.body_b64 else None
    if a.body_template and body is None:
        ap.error("--body-template needs --body-b64")
    if a.run_id < 0 or not 0 <= a.proc_index < a.procs:
        ap.error("need --run-id >= 0 and 0 <= --proc-index < --procs")

    def template(thread_index: int) -> Template | None:
        if not a.body_template:
            return None
        return Template(body, run_id=a.run_id, proc_index=a.proc_index, procs=a.procs, thread_index=thread_index,
                        threads=a.connections, base_ms=a.base_ms)

    # Convert the shared wall-clock window to this process's perf_counter.
    offset = time.time() - time.perf_counter()
    t_begin, t_start, t_end = a.begin - offset, a.start - offset, a.end - offset

    out = {"statuses": Counter(), "exceptions": Counter(), "latencies_us": []}
    lock = threading.Lock()
    threads = [threading.Thread(target=_worker, daemon=True,
                                args=(a.host, a.port, a.method, a.path, body, template(t), headers, t_begin, t_start,
                                      t_end, out, lock))
               for t in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, t_end - time.perf_counter()) + 15)  # a request may take up to the 10 s timeout
    with lock:  # a thread stuck past its join timeout must not append while we serialise
        result = {"statuses": {str(k): v for k, v in out["statuses"].items()},
                  "exceptions": dict(out["exceptions"]),
                  "latencies_us": list(out["latencies_us"])}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
