#!/bin/sh
# bench/http/run.sh: visits-server against Debian's h2o serving a small static file, on
# loopback, side by side with ratios. Run by hand (never a timed test):
#
#   bench/http/run.sh [path/to/visits-server]
#
# The bound (bench/http/bound.c, built as bench/http-bound next to the server's build) is
# the least work per durable visit: raw epoll, a fixed answer, the same group commit
# through libvisits. It shows what this machine's disk and CPUs allow any server in
# always mode; BOUND overrides its path.
#
# Environment: DURATION (s per wrk run, default 10), ROUNDS (default 3), CONNECTIONS
# (default 64), WRK_THREADS (default 2), SERVER_THREADS (default: CPU count), BENCH_DIR
# (where the counter files are written; default /var/tmp, a real disk, not tmpfs).
#
# Rows: GET / in always mode (every answer durable), the bound in always mode, GET / with
# --sync interval:100, GET /visits, h2o's static file (the ceiling), and Redis INCR with
# the AOF fsynced before every reply (appendonly yes, appendfsync always: the durable peer
# of GET / in always mode), driven by redis-benchmark with the same connections and client
# threads as wrk. All servers run at once, listen on 127.0.0.1 only; the HTTP servers get
# the same number of threads and log each request to /dev/null.
# The rows run interleaved, ROUNDS times, and the median round of each row is shown: on a
# shared machine the load drifts over a minute, and ratios of one round hold better.
# RSS is the largest VmRSS sampled every 0.2 s during the runs.
set -eu

SERVER=${1:-build/adapters/h2o/visits-server}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
SERVER_THREADS=${SERVER_THREADS:-$(nproc)}
BOUND=${BOUND:-$(dirname "$SERVER")/../../bench/http-bound}

for tool in wrk h2o python3 curl redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench/http: '$tool' not found (Debian packages: wrk h2o python3 curl redis-server redis-tools)" >&2
        exit 1
    }
done
[ -x "$SERVER" ] || { echo "bench/http: $SERVER: not an executable (build first)" >&2; exit 1; }
[ -x "$BOUND" ] || { echo "bench/http: $BOUND: not an executable (build first)" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/visits-bench.XXXXXX")
PIDS=""
cleanup() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "bench/http: nothing listens on port $1" >&2; exit 1; }
        sleep 0.05
    done
}

# cpu_ticks PID: user + system CPU time of the process (all threads), in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# sampler_start PID: samples the largest VmRSS of PID into $WORK/rss.PID (kept across
# rounds) in the background and notes its CPU ticks; sampler_stop ends it and sets cpu1.
sampler_start() {
    rss_file="$WORK/rss.$1"
    [ -f "$rss_file" ] || echo 0 >"$rss_file"
    (
        max=$(cat "$rss_file")
        while kill -0 "$1" 2>/dev/null; do
            rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
            if [ "${rss:-0}" -gt "$max" ]; then
                max=$rss
                echo "$max" >"$rss_file"
            fi
            sleep 0.2
        done
    ) &
    sampler=$!
    cpu0=$(cpu_ticks "$1")
}
sampler_stop() {
    cpu1=$(cpu_ticks "$1")
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
}

# run NAME PID URL: wrk against URL while sampling the RSS of PID; appends a result line.
run() {
    name=$1 pid=$2 url=$3
    wrk -t1 -c4 -d1s "$url" >/dev/null 2>&1 || true # warm-up
    sampler_start "$pid"
    wrk --latency -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$url" >"$WORK/wrk.out" 2>&1
    sampler_stop "$pid"
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.out")
    errors=$(awk '/Socket errors/ {print $0}' "$WORK/wrk.out")
    requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    echo "$name|$rps|$p99|$(cat "$rss_file")|${non2xx:-0}|$((cpu1 - cpu0))|$requests|${errors:-}" \
        >>"$WORK/results"
}

# redis_incr N: N INCRs from redis-benchmark with $CONNECTIONS connections and
# $WRK_THREADS client threads; sets REDIS_CSV to its line for INCR
# (INCR,rps,avg,min,p50,p95,p99,max; milliseconds) and counts them in $WORK/redis.sent.
redis_incr() {
    redis-benchmark -h 127.0.0.1 -p "$RPORT" -c "$CONNECTIONS" --threads "$WRK_THREADS" \
        -n "$1" -t incr --csv >"$WORK/redis.out" 2>&1 || true
    REDIS_CSV=$(grep '^"INCR"' "$WORK/redis.out" | tr -d '"')
    [ -n "$REDIS_CSV" ] || {
        echo "bench/http: redis-benchmark -n $1 failed: $(tail -c 300 "$WORK/redis.out")" >&2
        exit 1
    }
    echo $(($(cat "$WORK/redis.sent") + $1)) >"$WORK/redis.sent"
}

# run_redis: about DURATION seconds of INCR (a short pilot sizes -n); a result line.
run_redis() {
    redis_incr 20000
    n=$(echo "$REDIS_CSV" | awk -F, -v d="$DURATION" '{ n = int($2 * d); print n < 20000 ? 20000 : n }')
    sampler_start "$RPID"
    redis_incr "$n"
    sampler_stop "$RPID"
    rps=$(echo "$REDIS_CSV" | cut -d, -f2)
    p99=$(echo "$REDIS_CSV" | cut -d, -f7)
    echo "Redis INCR (always)|$rps|${p99}ms|$(cat "$WORK/rss.$RPID")|0|$((cpu1 - cpu0))|$n|" \
        >>"$WORK/results"
}

# start_visits NAME ARGS...: visits-server with a fresh data dir on a free port; sets
# VPID and VPORT.
start_visits() {
    dir="$WORK/$1"
    shift
    mkdir -p "$dir/data"
    VPORT=$(free_port)
    "$SERVER" --bind 127.0.0.1 --port "$VPORT" --threads "$SERVER_THREADS" \
        --data-dir "$dir/data" "$@" >/dev/null 2>"$dir/stderr" &
    VPID=$!
    PIDS="$PIDS $VPID"
    wait_port "$VPORT"
}

echo "visits-server: $SERVER ($("$SERVER" --version))"
echo "wrk: $WRK_THREADS threads, $CONNECTIONS connections, ${DURATION}s per row and round;" \
    "$ROUNDS rounds; server threads: $SERVER_THREADS; data: $WORK"

start_visits always --sync always
ALWAYS_PID=$VPID
ALWAYS_PORT=$VPORT
start_visits interval --sync interval:100
INTERVAL_PID=$VPID
INTERVAL_PORT=$VPORT
start_visits visits --sync always
VISITS_PID=$VPID
VISITS_PORT=$VPORT

mkdir -p "$WORK/bound"
BPORT=$(free_port)
"$BOUND" "$BPORT" "$WORK/bound/visits" "$SERVER_THREADS" 2>"$WORK/bound/stderr" &
BPID=$!
PIDS="$PIDS $BPID"
wait_port "$BPORT"

# h2o serving a 6-byte static file: the reference ceiling.
mkdir -p "$WORK/h2o/www"
printf 'hello\n' >"$WORK/h2o/www/index.txt"
chmod -R a+rX "$WORK/h2o" "$WORK"
HPORT=$(free_port)
cat >"$WORK/h2o/h2o.conf" <<H2O_CONF
listen:
  host: 127.0.0.1
  port: $HPORT
num-threads: $SERVER_THREADS
user: nobody
access-log: /dev/null
error-log: $WORK/h2o/error.log
hosts:
  default:
    paths:
      /:
        file.dir: $WORK/h2o/www
H2O_CONF
h2o -m worker -c "$WORK/h2o/h2o.conf" >/dev/null 2>&1 &
HPID=$!
PIDS="$PIDS $HPID"
wait_port "$HPORT"

# Redis with every INCR in its AOF, fsynced before the reply, on the same disk.
mkdir -p "$WORK/redis"
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
    --appendfsync always --save "" --protected-mode no --daemonize no \
    --logfile "$WORK/redis/redis.log" >/dev/null 2>&1 &
RPID=$!
PIDS="$PIDS $RPID"
wait_port "$RPORT"
until [ "$(redis-cli -p "$RPORT" ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
[ "$(redis-cli -p "$RPORT" config get appendfsync | tail -n 1)" = always ] || {
    echo "bench/http: redis-server does not run with appendfsync always" >&2
    exit 1
}
echo 0 >"$WORK/redis.sent"

round=1
while [ "$round" -le "$ROUNDS" ]; do
    run "GET / (always)" "$ALWAYS_PID" "http://127.0.0.1:$ALWAYS_PORT/"
    run "bound (always)" "$BPID" "http://127.0.0.1:$BPORT/"
    run "GET / (interval:100)" "$INTERVAL_PID" "http://127.0.0.1:$INTERVAL_PORT/"
    run "GET /visits" "$VISITS_PID" "http://127.0.0.1:$VISITS_PORT/visits"
    run "h2o static file" "$HPID" "http://127.0.0.1:$HPORT/index.txt"
    run_redis
    round=$((round + 1))
done

REDIS_COUNT=$(redis-cli -p "$RPORT" get 'counter:__rand_int__')
[ "$REDIS_COUNT" = "$(cat "$WORK/redis.sent")" ] || {
    echo "bench/http: Redis counter $REDIS_COUNT after $(cat "$WORK/redis.sent") INCRs" >&2
    exit 1
}
redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
wait "$RPID" 2>/dev/null || true

curl -s "http://127.0.0.1:$ALWAYS_PORT/metrics" >"$WORK/always.metrics"
for pid in $ALWAYS_PID $INTERVAL_PID $VISITS_PID; do
    kill -TERM "$pid"
    wait "$pid" || { echo "bench/http: visits-server $pid exited $?" >&2; exit 1; }
done
kill -TERM "$HPID" "$BPID"
wait "$HPID" "$BPID" 2>/dev/null || true
ALWAYS_COUNT=$(cat "$WORK/always/data/visits")
BOUND_ANSWERED=$(awk -F'|' '$1 == "bound (always)" {n += $7} END {print n + 0}' "$WORK/results")
BOUND_COUNT=$(cat "$WORK/bound/visits")
[ "$BOUND_COUNT" -ge "$BOUND_ANSWERED" ] || {
    echo "bench/http: the bound answered $BOUND_ANSWERED visits but its file holds $BOUND_COUNT" >&2
    exit 1
}

echo
python3 - "$WORK/results" "$ALWAYS_COUNT" "$WORK/always.metrics" <<'REPORT'
import os
import re
import statistics
import sys

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
rows = {}
for line in open(sys.argv[1]):
    name, rps, p99, rss, non2xx, ticks, requests, errors = line.rstrip("\n").split("|")
    cpu_us = int(ticks) * TICK_US / max(1, int(requests))
    rows.setdefault(name, []).append((float(rps), p99, int(rss), non2xx, cpu_us, errors))
ref = statistics.median(r[0] for r in rows["h2o static file"])
print("%-21s %9s %6s %9s %7s %7s %7s   %s" % ("", "req/s", "x h2o", "p99", "RSS MB",
                                               "non-2xx", "CPU us", "each round (req/s)"))
for name, runs in rows.items():
    rps, p99, _, non2xx, _, errors = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    print("%-21s %9.0f %6.2f %9s %7.1f %7s %7.1f   %s %s" % (
        name, rps, rps / ref, p99, max(r[2] for r in runs) / 1024, non2xx,
        statistics.median(r[4] for r in runs), " ".join("%.0f" % r[0] for r in runs), errors))
print("(CPU us: CPU time of the server process per request, user + system, the median round;"
      " it depends far less on the machine's other load than req/s)")

metrics = open(sys.argv[3]).read()


def metric(name):
    found = re.search(r"^%s (\S+)$" % name, metrics, re.M)
    return float(found.group(1)) if found else 0.0


cycles = metric("visits_commit_duration_seconds_count")
if cycles > 0:
    print("\nalways mode: %s visits on disk, %d durable write cycles: %.1f visits and %.2f ms"
          " per cycle" % (sys.argv[2], cycles, metric("visits_commit_batch_size_sum") / cycles,
                          1000 * metric("visits_commit_duration_seconds_sum") / cycles))
bound = statistics.median(r[0] for r in rows["bound (always)"])
always = statistics.median(r[0] for r in rows["GET / (always)"])
print("always mode against the bound (same disk cycle, least work per request): %.2f x;"
      " the bound against h2o: %.2f x" % (always / bound, bound / ref))
redis = statistics.median(r[0] for r in rows["Redis INCR (always)"])
print("always mode against Redis INCR (AOF fsynced before each reply, same connections):"
      " %.2f x (each round: %s)" % (always / redis, " ".join(
          "%.2f" % (a[0] / b[0]) for a, b in zip(rows["GET / (always)"],
                                                 rows["Redis INCR (always)"]))))
print("targets: GET /visits >= 0.90 x h2o; GET / (always) >= 0.50 x h2o and >= 1.0 x Redis"
      " INCR; RSS < 16 MB")
REPORT
