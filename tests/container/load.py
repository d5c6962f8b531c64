#!/usr/bin/env python3
"""Bounded HTTP load on visits-server: WORKERS threads, each on its own keep-alive
connection, send GET / (JSON) until MAX_REQUESTS in total or MAX_SECONDS have passed or
the server goes away. Prints one JSON line: requests sent, responses acknowledged (200),
the highest acknowledged count, errors.

    load.py URL WORKERS MAX_REQUESTS MAX_SECONDS
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def main():
    url, workers, max_requests, max_seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    u = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + max_seconds
    lock = threading.Lock()
    st = {"sent": 0, "acked": 0, "max_ack": 0, "errors": 0, "bad": 0, "first_error": ""}

    def take():
        with lock:
            if st["sent"] >= max_requests or time.monotonic() >= deadline:
                return False
            st["sent"] += 1
            return True

    def worker():
        conn = None
        fails = 0
        while take():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
                conn.request("GET", "/", headers={"Accept": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    with lock:
                        st["bad"] += 1
                    continue
                n = json.loads(body)["visits"]
                with lock:
                    st["acked"] += 1
                    st["max_ack"] = max(st["max_ack"], n)
                fails = 0
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                with lock:
                    st["errors"] += 1
                    st["first_error"] = st["first_error"] or repr(e)
                if conn is not None:
                    conn.close()
                conn = None
                fails += 1
                if fails >= 3:  # the server is gone: stop this worker
                    return
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(st))


if __name__ == "__main__":
    main()
