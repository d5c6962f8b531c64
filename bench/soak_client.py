#!/usr/bin/env python3
"""Load for bench/soak.sh: THREADS keep-alive clients send a mix of requests to
visits-server and survive its restarts.

  70% GET /         (Accept: application/json; a 200 acknowledges {"visits":N})
  20% GET /visits
   5% GET /metrics
   5% GET /health

Every acknowledged value N is appended to ACKLOG as a line "N\\n" (flushed at once), so
soak.sh can check, right before a kill -9, what had been acknowledged. Connection errors
while the server is down are counted and retried after a short pause. Runs until
STOPFILE exists, then writes a JSON summary to stdout.

usage: soak_client.py PORT ACKLOG STOPFILE [THREADS]
"""

import http.client
import json
import os
import random
import sys
import threading
import time

MIX = [("/", 70), ("/visits", 20), ("/metrics", 5), ("/health", 5)]


def pick(rng):
    x = rng.randrange(100)
    for path, weight in MIX:
        if x < weight:
            return path
        x -= weight
    return "/"


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.splitlines()[-1])
    port, acklog, stopfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    nthreads = int(sys.argv[4]) if len(sys.argv) == 5 else 8
    lock = threading.Lock()
    out = open(acklog, "a", buffering=1)
    counts = {"requests": 0, "acks": 0, "conn_errors": 0, "unavailable": 0, "bad_status": 0,
              "bad_body": 0}
    bad = []

    def worker(seed):
        rng = random.Random(seed)
        conn = None
        local = {k: 0 for k in counts}
        while not os.path.exists(stopfile):
            path = pick(rng)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", path, headers={"Accept": "application/json"})
                r = conn.getresponse()
                body = r.read()
                local["requests"] += 1
                if r.status == 503:
                    local["unavailable"] += 1  # starting or stopping: no acknowledgement
                    continue
                if r.status != 200:
                    local["bad_status"] += 1
                    with lock:
                        bad.append(f"GET {path}: {r.status} {body[:200]!r}")
                    continue
                if path == "/":
                    try:
                        v = int(json.loads(body)["visits"])
                    except (ValueError, KeyError) as e:
                        local["bad_body"] += 1
                        with lock:
                            bad.append(f"GET /: body {body[:200]!r}: {e}")
                        continue
                    with lock:
                        out.write(f"{v}\n")
                    local["acks"] += 1
            except (OSError, http.client.HTTPException):
                local["conn_errors"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        with lock:
            for k, v in local.items():
                counts[k] += v

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()
    counts["first_errors"] = bad[:5]
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
