#!/bin/sh
# bench/http/run.sh: visits-server against Debian's h2o serving a small static file, in
# one run on loopback, side by side with ratios. Run by hand (never a timed test):
#
#   bench/http/run.sh [path/to/visits-server]
#
# Environment: DURATION (s per wrk run, default 10), CONNECTIONS (default 64), WRK_THREADS
# (default 2), SERVER_THREADS (default: CPU count), BENCH_DIR (where the counter file is
# written; default a temp dir under /var/tmp, i.e. on a real disk, not tmpfs).
#
# Rows: GET / in always mode (every answer durable), GET / with --sync interval:100,
# GET /visits, and h2o's static file (the ceiling). Both servers log each request to
# /dev/null, listen on 127.0.0.1 only and get the same number of threads. RSS is the
# largest VmRSS sampled every 0.2 s during the run.
set -eu

SERVER=${1:-build/adapters/h2o/visits-server}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
SERVER_THREADS=${SERVER_THREADS:-$(nproc)}

for tool in wrk h2o python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench/http: '$tool' not found (Debian packages: wrk h2o python3)" >&2
        exit 1
    }
done
[ -x "$SERVER" ] || { echo "bench/http: $SERVER: not an executable (build first)" >&2; exit 1; }

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
    until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "bench/http: nothing listens on port $1" >&2; exit 1; }
        sleep 0.05
    done
}

# run NAME PID URL: wrk against URL while sampling the RSS of PID; appends a result line.
run() {
    name=$1 pid=$2 url=$3
    wrk -t1 -c4 -d1s "$url" >/dev/null 2>&1 || true # warm-up
    rss_file="$WORK/rss.$pid"
    echo 0 >"$rss_file"
    (
        max=0
        while kill -0 "$pid" 2>/dev/null; do
            rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
            [ "${rss:-0}" -gt "$max" ] && max=$rss && echo "$max" >"$rss_file"
            sleep 0.2
        done
    ) &
    sampler=$!
    wrk --latency -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$url" >"$WORK/wrk.out" 2>&1
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.out")
    errors=$(awk '/Socket errors/ {print $0}' "$WORK/wrk.out")
    echo "$name|$rps|$p99|$(cat "$rss_file")|${non2xx:-0}|${errors:-}" >>"$WORK/results"
}

# start_visits NAME ARGS...: starts visits-server with a fresh data dir on a free port.
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

stop_visits() {
    kill -TERM "$VPID"
    wait "$VPID" || { echo "bench/http: visits-server exited $?" >&2; exit 1; }
}

echo "visits-server: $SERVER ($("$SERVER" --version))"
echo "wrk: $WRK_THREADS threads, $CONNECTIONS connections, ${DURATION}s per row; server threads: $SERVER_THREADS; data: $WORK"

start_visits always --sync always
run "GET / (always)" "$VPID" "http://127.0.0.1:$VPORT/"
stop_visits
ALWAYS_COUNT=$(cat "$WORK/always/data/visits")

start_visits interval --sync interval:100
run "GET / (interval:100)" "$VPID" "http://127.0.0.1:$VPORT/"
stop_visits

start_visits visits --sync always
run "GET /visits" "$VPID" "http://127.0.0.1:$VPORT/visits"
stop_visits

# h2o serving a 6-byte static file: the reference ceiling.
mkdir -p "$WORK/h2o/www"
printf 'hello\n' >"$WORK/h2o/www/index.txt"
chmod -R a+rX "$WORK/h2o" "$WORK"
HPORT=$(free_port)
cat >"$WORK/h2o/h2o.conf" <<EOF
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
EOF
h2o -m worker -c "$WORK/h2o/h2o.conf" >/dev/null 2>&1 &
HPID=$!
PIDS="$PIDS $HPID"
wait_port "$HPORT"
run "h2o static file" "$HPID" "http://127.0.0.1:$HPORT/index.txt"
kill -TERM "$HPID"
wait "$HPID" 2>/dev/null || true

echo
python3 - "$WORK/results" "$ALWAYS_COUNT" <<'EOF'
import sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1])]
ref = float(rows[-1][1])
print("%-22s %12s %8s %10s %9s %8s" % ("", "requests/s", "x h2o", "p99", "RSS MB", "non-2xx"))
for name, rps, p99, rss, non2xx, errors in rows:
    print("%-22s %12.0f %8.2f %10s %9.1f %8s %s" % (name, float(rps), float(rps) / ref, p99,
                                                 int(rss) / 1024, non2xx, errors))
print("\ncounter after the always-mode row: %s (each one a durable, acknowledged visit)"
      % sys.argv[2])
print("targets: GET /visits >= 0.90 x h2o; GET / (always) >= 0.50 x h2o; RSS < 16 MB")
EOF
