#!/usr/bin/env bash
# soak.sh: mixed load on visits-server with a kill -9 and restart every KILL_EVERY
# seconds, for DURATION seconds. Checks that no acknowledged visit is lost, RSS stays
# flat, fds do not grow and no temp files are left. See docs/soak.md.
#
# usage: bench/soak.sh --server PATH [--visitsctl PATH] [--duration SECONDS]
#                      [--kill-every SECONDS] [--clients N] [--dir DIR] [--out DIR]
#                      [--sync always|interval:MS]
#   --duration 1800 (30 min), --kill-every 60 (0: never), --clients 8 (client threads),
#   --dir: where the counter lives (default: a fresh dir under /var/tmp, removed at the
#   end); --out: keeps samples.tsv, acks.log, server logs and report.txt there.
#   Each minute also runs a 10 s wrk burst of 64 connections on GET /visits (if wrk is
#   installed), so connections come and go in bulk.
# Exit status: 0 all checks passed, 1 a check failed, 2 usage.
set -euo pipefail

SERVER="" VISITSCTL="" DURATION=1800 KILL_EVERY=60 CLIENTS=8 DIR="" OUT="" SYNC=always
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { sed -n '6,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --server) SERVER=$2; shift 2 ;;
    --visitsctl) VISITSCTL=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --kill-every) KILL_EVERY=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --sync) SYNC=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "soak.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ -n $SERVER && -x $SERVER ]] || { echo "soak.sh: --server PATH: no executable visits-server at '${SERVER}'" >&2; exit 2; }
[[ $DURATION =~ ^[0-9]+$ && $KILL_EVERY =~ ^[0-9]+$ ]] &&
  [[ $KILL_EVERY -eq 0 || $KILL_EVERY -ge 10 ]] ||
  { echo "soak.sh: --duration and --kill-every are whole seconds, --kill-every 0 or >= 10" >&2; exit 2; }
PERIOD=$([[ $KILL_EVERY -gt 0 ]] && echo "$KILL_EVERY" || echo 60)  # of the wrk bursts
if [[ -z $VISITSCTL ]]; then
  VISITSCTL=$(dirname "$SERVER")/../cli/visitsctl
fi
[[ -x $VISITSCTL ]] || { echo "soak.sh: no visitsctl at '$VISITSCTL' (give --visitsctl)" >&2; exit 2; }

OWN_DIR=0
if [[ -z $DIR ]]; then DIR=$(mktemp -d /var/tmp/visits-soak.XXXXXX); OWN_DIR=1; fi
mkdir -p "$DIR"
DIR=$(realpath "$DIR")  # /proc/PID/fd shows absolute, resolved paths
[[ -z $OUT ]] && OUT=$(mktemp -d /tmp/visits-soak-out.XXXXXX)
mkdir -p "$OUT"
ACKS=$OUT/acks.log SAMPLES=$OUT/samples.tsv REPORT=$OUT/report.txt STOP=$OUT/stop
COUNTER=$DIR/visits
: >"$ACKS"; rm -f "$STOP"
printf 'time_s\tincarnation\tage_s\trss_kb\tfds\tother_fds\tthreads\ttemps\n' >"$SAMPLES"

SRV_PID="" CLIENT_PID="" WRK_PID="" BASE_FDS=""
FAILS=0
fail() { echo "soak.sh: FAIL: $*" | tee -a "$REPORT" >&2; FAILS=$((FAILS + 1)); }
note() { echo "soak.sh: $*" | tee -a "$REPORT"; }

cleanup() {
  touch "$STOP"
  [[ -n $WRK_PID ]] && kill "$WRK_PID" 2>/dev/null || true
  [[ -n $CLIENT_PID ]] && kill "$CLIENT_PID" 2>/dev/null || true
  [[ -n $SRV_PID ]] && kill -9 "$SRV_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ $OWN_DIR -eq 1 ]]; then rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
INCARNATION=0

start_server() {
  INCARNATION=$((INCARNATION + 1))
  "$SERVER" --bind 127.0.0.1 --port "$PORT" --data-dir "$DIR" --threads 2 --sync "$SYNC" \
    >"$OUT/server.$INCARNATION.log" 2>&1 &
  SRV_PID=$!
  STARTED=$(date +%s)
  local i
  for i in $(seq 1 200); do  # 20 s at most
    if curl -fs -o /dev/null "http://127.0.0.1:$PORT/health"; then return 0; fi
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "visits-server did not start (incarnation $INCARNATION): $(tail -3 "$OUT/server.$INCARNATION.log")"
  return 1
}

max_ack() { awk 'BEGIN { m = 0 } $1 + 0 > m { m = $1 + 0 } END { printf "%d\n", m }' "$ACKS"; }
temps() { find "$DIR" -maxdepth 1 -name '.visits.tmp-*' | wc -l; }

sample() {
  local now rss fds nonsock thr
  now=$(date +%s)
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SRV_PID/status" 2>/dev/null || echo 0)
  thr=$(awk '/^Threads:/ { print $2 }' "/proc/$SRV_PID/status" 2>/dev/null || echo 0)
  fds=$(find "/proc/$SRV_PID/fd" -mindepth 1 2>/dev/null | wc -l)
  # fds that must stay constant: not sockets (they follow the load), not the counter
  # file or a temp (opened and closed by every read and write cycle)
  nonsock=$(find "/proc/$SRV_PID/fd" -mindepth 1 -printf '%l\n' 2>/dev/null |
    grep -vc -e '^socket:' -e '/\.visits\.tmp-' -e "^$COUNTER\$" || true)
  if [[ -z $BASE_FDS ]]; then BASE_FDS=$nonsock; fi
  if [[ $nonsock -ne $BASE_FDS ]]; then  # keep the evidence
    ls -l "/proc/$SRV_PID/fd" >"$OUT/fds.$((now - T0)).txt" 2>&1 || true
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$((now - T0))" "$INCARNATION" "$((now - STARTED))" \
    "$rss" "$fds" "$nonsock" "$thr" "$(temps)" >>"$SAMPLES"
}

# The check around each kill: what was acknowledged before the kill is on disk, the
# file parses, and the restarted server has removed any temp the kill left.
kill_and_check() {
  local acked value stale name
  acked=$(max_ack)
  kill -9 "$SRV_PID"
  wait "$SRV_PID" 2>/dev/null || true
  if ! value=$("$VISITSCTL" get "$COUNTER" 2>&1); then
    fail "after kill -9 #$INCARNATION: $COUNTER does not read: $value"
    return
  fi
  # the temps the killed server left (the new one makes its own while it works)
  stale=$(find "$DIR" -maxdepth 1 -name '.visits.tmp-*' -printf '%f\n')
  if [[ $value -lt $acked ]]; then
    fail "after kill -9 #$INCARNATION: the file holds $value but $acked was acknowledged before the kill"
  fi
  KILL_LOG+="kill $INCARNATION: acknowledged $acked, on disk $value, temps left by the kill $(printf '%s' "$stale" | grep -c . || true)"$'\n'
  start_server || return
  for name in $stale; do
    [[ -e $DIR/$name ]] && fail "restart #$INCARNATION did not remove the stale temp $DIR/$name"
  done
  return 0
}

T0=$(date +%s)
KILL_LOG=""
note "soak: $DURATION s, kill -9 every $KILL_EVERY s, $CLIENTS clients, sync $SYNC, dir $DIR, out $OUT"
note "server: $("$SERVER" --version | head -1); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start_server || exit 1
python3 "$HERE/soak_client.py" "$PORT" "$ACKS" "$STOP" "$CLIENTS" >"$OUT/client.json" 2>"$OUT/client.err" &
CLIENT_PID=$!

END=$((T0 + DURATION))
NEXT_KILL=$((KILL_EVERY > 0 ? T0 + KILL_EVERY : END + 1))
NEXT_BURST=$((T0 + PERIOD / 3))
while :; do
  now=$(date +%s)
  [[ $now -ge $END ]] && break
  kill -0 "$CLIENT_PID" 2>/dev/null || { fail "the load client died: $(tail -3 "$OUT/client.err")"; break; }
  if ! kill -0 "$SRV_PID" 2>/dev/null; then
    fail "visits-server died by itself (incarnation $INCARNATION): $(tail -3 "$OUT/server.$INCARNATION.log")"
    start_server || break
  fi
  sample
  if [[ $now -ge $NEXT_BURST ]] && command -v wrk >/dev/null; then
    wrk -t 1 -c 64 -d 10s "http://127.0.0.1:$PORT/visits" >"$OUT/wrk.last" 2>&1 &
    WRK_PID=$!
    NEXT_BURST=$((NEXT_BURST + PERIOD))
  fi
  if [[ $now -ge $NEXT_KILL && $((END - now)) -gt 5 ]]; then
    kill_and_check
    NEXT_KILL=$((NEXT_KILL + KILL_EVERY))
  fi
  sleep 2
done

# The end: stop the load, stop the server gracefully, check everything.
[[ -n $WRK_PID ]] && wait "$WRK_PID" 2>/dev/null || true
WRK_PID=""
touch "$STOP"
wait "$CLIENT_PID" || fail "the load client exited with an error: $(tail -3 "$OUT/client.err")"
CLIENT_PID=""
sample
kill -TERM "$SRV_PID"
if ! wait "$SRV_PID"; then fail "visits-server did not exit 0 on SIGTERM"; fi
SRV_PID=""

FINAL=$("$VISITSCTL" get "$COUNTER") || { fail "final read of $COUNTER"; FINAL=0; }
read -r NACKS NDISTINCT MAXACK < <(sort -n "$ACKS" | awk '{ n++; if ($1 != prev) d++; prev = $1 } END { printf "%d %d %d\n", n, d, prev }')
[[ $NACKS -eq $NDISTINCT ]] || fail "$((NACKS - NDISTINCT)) acknowledged values were handed out twice: acknowledged increments were lost"
[[ $MAXACK -le $FINAL ]] || fail "the final value $FINAL is below the largest acknowledged value $MAXACK"
[[ $NACKS -le $FINAL ]] || fail "$NACKS visits were acknowledged but the counter is only $FINAL"
[[ $(temps) -eq 0 ]] || fail "$(temps) temp files left in $DIR after the final stop"
find "$DIR" -mindepth 1 -maxdepth 1 ! -name visits ! -name .visits.lock | grep -q . &&
  fail "unexpected files in $DIR: $(ls -A "$DIR")"

# RSS and fds: per incarnation, samples after 10 s of warm-up.
STATS=$(awk -F'\t' 'NR > 1 && $3 >= 10 {
    n++; inc = $2
    if (!(inc in first)) first[inc] = $4; last[inc] = $4
    if (rmin == "" || $4 < rmin) rmin = $4; if ($4 > rmax) rmax = $4
    if (fmin == "" || $5 < fmin) fmin = $5; if ($5 > fmax) fmax = $5
    if (nmin == "" || $6 < nmin) nmin = $6; if ($6 > nmax) nmax = $6
  } END {
    g = 0; for (i in first) if (last[i] - first[i] > g) g = last[i] - first[i]
    printf "%d %d %d %d %d %d %d %d\n", n, rmin, rmax, g, fmin, fmax, nmin, nmax
  }' "$SAMPLES")
read -r NS RMIN RMAX RGROW FMIN FMAX NMIN NMAX <<<"$STATS"
[[ $NMIN -eq $NMAX ]] || fail "fds other than sockets and the counter's own files vary between $NMIN and $NMAX (listings: $OUT/fds.*.txt): an fd leak?"
[[ $RGROW -le 2048 ]] || fail "RSS grew by $RGROW kB within one incarnation"

note "client: $(cat "$OUT/client.json")"
printf '%s' "$KILL_LOG" | tee -a "$REPORT"
note "result: $((INCARNATION - 1)) kill -9 + restart; $NACKS visits acknowledged ($NDISTINCT distinct), largest $MAXACK; final counter $FINAL"
note "RSS (kB, $NS samples after 10 s warm-up): min $RMIN, max $RMAX, largest growth within one incarnation $RGROW"
note "fds: total $FMIN-$FMAX (sockets come and go with the load), others (not sockets, not the counter or a temp) $NMIN-$NMAX; temps left: $(temps)"
note "load average after: $(cut -d' ' -f1-3 /proc/loadavg); samples in $SAMPLES"
if [[ $FAILS -ne 0 ]]; then
  note "FAIL: $FAILS check(s) failed"
  exit 1
fi
note "PASS"
