"""A small closed-loop HTTP load generator (standard library only), run by bench/run.py.

One process runs ``--connections`` threads; each keeps one HTTP/1.1 keep-alive connection and
sends the same request back to back (reconnecting if the server closes it). All processes of a
run share the same wall-clock window: they start sending at ``--begin`` (warm-up), count only
responses that complete in [``--start``, ``--end``), and stop by themselves at ``--end``.
Prints one JSON object on stdout: status counts, exceptions and latencies (µs) inside the window.

Loopback only: any host other than 127.0.0.1 / ::1 / localhost is refused.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import sys
import threading
import time
from collections import Counter

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _worker(host, port, method, path, body, headers, t_begin, t_start, t_end, out, lock):
    statuses: Counter = Counter()
    exceptions: Counter = Counter()
    latencies: list[int] = []
    conn = http.client.HTTPConnection(host, port, timeout=10)
    pc = time.perf_counter
    while pc() < t_begin:
        time.sleep(min(0.01, max(0.0, t_begin - pc())))
    while True:
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

    # Convert the shared wall-clock window to this process's perf_counter.
    offset = time.time() - time.perf_counter()
    t_begin, t_start, t_end = a.begin - offset, a.start - offset, a.end - offset

    out = {"statuses": Counter(), "exceptions": Counter(), "latencies_us": []}
    lock = threading.Lock()
    threads = [threading.Thread(target=_worker, daemon=True,
                                args=(a.host, a.port, a.method, a.path, body, headers, t_begin, t_start, t_end, out, lock))
               for _ in range(a.connections)]
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
