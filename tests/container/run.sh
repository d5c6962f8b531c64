#!/usr/bin/env bash
# Container tests (label "container"): build the image from scratch with no registry and
# run it the way users do. One STEP per ctest test:
#
#   image        (fixture setup) base image from the Debian mirror, then the Dockerfile
#   config       what `podman inspect` shows: size, user, port, volume, entrypoint, labels;
#                no compilers or apt lists; the manifests' pod user is the image's user
#   http         HTTP on a loopback port, non-root, read-only root, kubectl-exec-style reads
#   persist      the count survives removing and recreating the container (same volume)
#   signals      SIGTERM (podman stop, plain kill, with an idle keep-alive client) exits 0 fast
#   kill         SIGKILL under load leaves a valid file holding every acknowledged visit
#   statefulset  deploy/base played as two pods with their own volumes, the headless
#                Service's DNS name (a network alias of both pods) listing both for GET
#                /cluster, pod deletion, and a rolling image change one pod at a time
#   cleanup      (fixture cleanup) remove the private container storage
#
#   run.sh STEP STATE_DIR SOURCE_DIR VERSION
#
# Everything lives in a private podman storage and network config under STATE_DIR; only
# loopback ports and networks created here are used. Networks use netavark with
# aardvark-dns, the DNS server that resolves a network alias shared by several pods to all
# of their addresses, as a headless Service does. The base image's root filesystem is
# cached in ${XDG_CACHE_HOME:-~/.cache}/visits (deploy/image/base-image.sh). Missing tools
# or no root skip loudly (exit 77), except under CI=true, where they fail.
set -euo pipefail

step=$1
state=$2
src=$3
version=$4
here=$(cd "$(dirname "$0")" && pwd)
IMAGE=localhost/visits:test
IMAGE2=localhost/visits:test-rollout
UID_GID=10001:10001
NAME=vt-$step-$$ # prefix of everything this test creates

log() { echo "[$(date +%T)] $*"; }
fail() {
    echo "FAIL ($step): $*" >&2
    exit 1
}
skip() {
    if [[ ${CI:-} == true ]]; then
        fail "$* (CI=true: container tests may not be skipped)"
    fi
    echo "SKIP ($step): $*" >&2
    exit 77
}

require_tools() {
    [[ $(id -u) -eq 0 ]] || skip "needs root (mmdebstrap --mode=root, podman with runc)"
    local t
    for t in podman buildah mmdebstrap runc catatonit curl python3 "$@"; do
        command -v "$t" >/dev/null 2>&1 ||
            skip "$t not found (apt-get install podman buildah runc mmdebstrap uidmap catatonit curl python3)"
    done
    for t in netavark aardvark-dns; do
        [[ -x /usr/lib/podman/$t || -x /usr/libexec/podman/$t ]] ||
            skip "podman's $t not found (apt-get install netavark aardvark-dns)"
    done
}

use_state() {
    export CONTAINERS_CONF=$state/containers.conf
    export CONTAINERS_STORAGE_CONF=$state/storage.conf
    export TMPDIR=$state/tmp
}

write_state() {
    mkdir -p "$state"/{graph,run,tmp,libpod,net}
    # runc: crun fails on this kernel's hybrid cgroups; the default ulimits fail with
    # EPERM; no systemd needed (cgroupfs, events in a file).
    cat >"$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$state/libpod"
[network]
network_backend = "netavark"
network_config_dir = "$state/net"
EOF
    cat >"$state/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$state/graph"
runroot = "$state/run"
EOF
}

remove_state() {
    [[ -f $state/storage.conf ]] || {
        rm -rf "$state"
        return 0
    }
    use_state
    podman pod rm -af -t 0 >/dev/null 2>&1 || true
    podman rm -af -t 0 >/dev/null 2>&1 || true
    buildah rm -a >/dev/null 2>&1 || true
    local n
    for n in $(podman network ls --format '{{.Name}}' 2>/dev/null); do
        [[ $n == podman ]] || podman network rm -f "$n" >/dev/null 2>&1 || true
    done
    podman volume rm -af >/dev/null 2>&1 || true
    podman rmi -af >/dev/null 2>&1 || true
    # Leftover overlay mounts (a crashed run) must go before the directory can.
    { grep -o " $state/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$state"
}

need_image() {
    use_state
    podman image exists "$IMAGE" 2>/dev/null ||
        fail "image $IMAGE is missing: the container.image test (fixture setup) must pass first"
}

# ------------------------------------------------------------------ helpers of the steps
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A fresh directory for a bind-mounted /data, owned by the image's user (what fsGroup
# gives a pod's volume).
data_dir() {
    local d
    d=$(mktemp -d "$state/tmp/$NAME-data.XXXXXX")
    chown "$UID_GID" "$d"
    echo "$d"
}

# Wait until URL/ready answers 200: at most 15 s.
wait_ready() {
    local url=$1 i
    for i in $(seq 150); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url/ready" || true) == 200 ]] && return 0
        sleep 0.1
    done
    fail "$url/ready did not answer 200 within 15 s"
}

# GET PATH (JSON); prints the body; fails unless 200.
get() {
    local url=$1 out code
    out=$(curl -s --max-time 5 -H 'Accept: application/json' -w '\n%{http_code}' "$url") ||
        fail "GET $url: curl failed"
    code=${out##*$'\n'}
    [[ $code == 200 ]] || fail "GET $url: status $code: ${out%$'\n'*}"
    printf '%s\n' "${out%$'\n'*}"
}

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

expect_eq() { # what got want
    [[ $2 == "$3" ]] || fail "$1: got '$2', expected '$3'"
    log "ok: $1 = $3"
}

visit() { get "$1/" | json_field visits; }
count() { get "$1/visits" | json_field visits; }

host_port() { podman port "$1" 8080/tcp | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1; }

# Start the image detached on our network, /data from $2 (a directory or a named volume),
# published on a loopback port; extra podman run options after. Prints the URL.
start() {
    local name=$1 vol=$2
    shift 2
    podman run -d --name "$name" --network "$NAME" --read-only -p 127.0.0.1::8080 \
        -v "$vol:/data" "$@" "$IMAGE" >/dev/null
    local port
    port=$(host_port "$name")
    [[ -n $port ]] || fail "$name: no published loopback port"
    echo "http://127.0.0.1:$port"
}

exit_code() { podman inspect "$1" --format '{{.State.ExitCode}}'; }

# Wait until container $1 has ended, at most $2 seconds; 1 if it is still running then.
# This polls the runtime's state (`podman inspect`) instead of using `podman wait`, which
# also waits for podman's own cleanup (the exit command conmon runs after the container
# ends) and falls back only after 20 s where that command does not complete.
wait_exit() {
    local name=$1 secs=$2 st deadline
    deadline=$(($(date +%s%N) + secs * 1000000000))
    while :; do
        st=$(podman inspect "$name" --format '{{.State.Status}}') || fail "podman inspect $name failed"
        [[ $st == running ]] || return 0
        (($(date +%s%N) < deadline)) || return 1
        sleep 0.05
    done
}

# After wait_exit: where podman's exit command has not cleaned up container $1 within 3 s,
# say so loudly on stderr and run the cleanup here, with its output (a diagnosis for a
# machine where that command fails; our tests do not depend on it).
ensure_cleaned() {
    local name=$1 i
    for i in $(seq 30); do
        [[ $(podman inspect "$name" --format '{{.State.Status}}') == stopped ]] || return 0
        sleep 0.1
    done
    echo "NOTE ($step): $name ended, but podman's exit command did not clean it up within" \
        "3 s; running 'podman container cleanup $name' here:" >&2
    podman --log-level info container cleanup "$name" >&2 || echo "NOTE ($step): that failed too" >&2
}

# Run the image to its end (detached, then wait_exit) with the podman run options and
# command given; print what it wrote to standard output. Fails after 60 s.
run_to_end() {
    local name=$NAME-once-$RANDOM
    podman run -d --name "$name" "$@" >/dev/null
    wait_exit "$name" 60 || fail "$name ($*) did not end within 60 s"
    ensure_cleaned "$name"
    podman logs "$name"
    podman rm -f -t 0 "$name" >/dev/null
}

# A valid counter file: decimal, no sign, no leading zeros, then one newline.
check_file() {
    local f=$1
    python3 - "$f" <<'EOF' || fail "$f is not a valid counter file: $(od -c "$f" | head -n 3)"
import re, sys
b = open(sys.argv[1], "rb").read()
sys.exit(0 if re.fullmatch(rb"(0|[1-9][0-9]{0,19})\n", b) else 1)
EOF
}

cleanup_test() {
    podman pod rm -f -t 0 $(podman pod ls -q --filter "name=^$NAME" 2>/dev/null) >/dev/null 2>&1 || true
    podman rm -f -t 0 $(podman ps -aq --filter "name=^$NAME" 2>/dev/null) >/dev/null 2>&1 || true
    podman volume rm -f $(podman volume ls -q --filter "name=^$NAME" 2>/dev/null) >/dev/null 2>&1 || true
    podman network rm -f "$NAME" >/dev/null 2>&1 || true
    rm -rf "$state/tmp/$NAME"-*
}

begin_test() {
    require_tools "$@"
    need_image
    # One such test at a time on this machine, whatever the build directory: podman picks
    # a bridge name and subnet for a new network from its own (here private) network
    # configs and the host's live interfaces, so two runs creating networks at once
    # could pick the same ones.
    exec 8>"${VISITS_CONTAINER_LOCK:-/run/lock/visits-container-tests.lock}"
    flock -w 600 8 || fail "another container test held the lock for 10 minutes"
    trap cleanup_test EXIT
    podman network create "$NAME" >/dev/null
}

# ------------------------------------------------------------------ steps
step_image() {
    require_tools
    remove_state
    write_state
    use_state
    local t0 t1 t2 rev
    t0=$(date +%s)
    "$src/deploy/image/base-image.sh" >/dev/null
    t1=$(date +%s)
    log "base image debian:bookworm-slim ready in $((t1 - t0)) s ($("$src/deploy/image/base-image.sh" --print-tarball))"
    rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
    buildah bud --pull=never --isolation chroot --format docker \
        --build-arg VERSION="$version" --build-arg REVISION="$rev" \
        -f "$src/Dockerfile" -t "$IMAGE" "$src" >"$state/build.log" 2>&1 || {
        tail -n 60 "$state/build.log" >&2
        fail "buildah bud failed (log above, full log in $state/build.log)"
    }
    t2=$(date +%s)
    log "image $IMAGE built in $((t2 - t1)) s, $(podman image inspect "$IMAGE" --format '{{.Size}}') bytes"
}

step_config() {
    require_tools kubectl
    need_image
    local size user
    size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
    ((size <= 90000000)) || fail "image is $size bytes, over the 90 MB budget"
    log "ok: image size $((size / 1000000)) MB (<= 90 MB)"
    user=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
    expect_eq "image user" "$user" "$UID_GID"
    expect_eq "exposed ports" "$(podman image inspect "$IMAGE" --format '{{range $p, $v := .Config.ExposedPorts}}{{$p}} {{end}}')" "8080/tcp "
    expect_eq "volumes" "$(podman image inspect "$IMAGE" --format '{{range $p, $v := .Config.Volumes}}{{$p}} {{end}}')" "/data "
    expect_eq "entrypoint (exec form)" "$(podman image inspect "$IMAGE" --format '{{json .Config.Entrypoint}}')" '["/usr/local/bin/visits-server"]'
    expect_eq "cmd" "$(podman image inspect "$IMAGE" --format '{{json .Config.Cmd}}')" "null"
    expect_eq "stop signal" "$(podman image inspect "$IMAGE" --format '{{.Config.StopSignal}}')" "SIGTERM"
    expect_eq "label version" "$(podman image inspect "$IMAGE" --format '{{index .Config.Labels "org.opencontainers.image.version"}}')" "$version"
    expect_eq "label title" "$(podman image inspect "$IMAGE" --format '{{index .Config.Labels "org.opencontainers.image.title"}}')" "visits"
    local rev
    rev=$(podman image inspect "$IMAGE" --format '{{index .Config.Labels "org.opencontainers.image.revision"}}')
    [[ -n $rev ]] || fail "no org.opencontainers.image.revision label"

    # What is (not) in the final image.
    local inside
    inside=$(run_to_end --network none --entrypoint /bin/sh "$IMAGE" -c '
        for t in gcc cc c99 cpp ld as cmake make pkg-config; do command -v $t; done
        ls -A /var/lib/apt/lists; ls -A /var/cache/apt
        ls /usr/include 2>/dev/null | head -n 3
        visits-server --version; visitsctl --version; id -u; id -g')
    expect_eq "compilers, apt lists, headers in the image; versions; ids" "$inside" \
        "$(printf '%s\n' "visits-server $version (libvisits $version, libh2o 2.2.5)" "visitsctl $version" 10001 10001)"

    # The Kubernetes pod runs as the image's user (deploy/base).
    local rendered uid gid fsg
    rendered=$(KUBECONFIG=/dev/null kubectl kustomize "$src/deploy/base")
    uid=$(sed -n 's/^ *runAsUser: *\([0-9]*\)$/\1/p' <<<"$rendered" | sort -u)
    gid=$(sed -n 's/^ *runAsGroup: *\([0-9]*\)$/\1/p' <<<"$rendered" | sort -u)
    fsg=$(sed -n 's/^ *fsGroup: *\([0-9]*\)$/\1/p' <<<"$rendered" | sort -u)
    expect_eq "deploy/base runAsUser:runAsGroup" "$uid:$gid" "$user"
    expect_eq "deploy/base fsGroup" "$fsg" "${user#*:}"
}

step_http() {
    begin_test
    local dir url pid uid
    dir=$(data_dir)
    url=$(start "$NAME-c" "$dir")
    wait_ready "$url"
    expect_eq "GET /visits on a new volume" "$(get "$url/visits")" "{\"visits\":0,\"pod\":\"$(podman inspect "$NAME-c" --format '{{.Config.Hostname}}')\"}"
    expect_eq "GET / (1st)" "$(visit "$url")" 1
    expect_eq "GET / (2nd)" "$(visit "$url")" 2
    expect_eq "GET / (3rd)" "$(visit "$url")" 3
    local html
    html=$(curl -s --max-time 5 -H 'Accept: text/html' "$url/")
    grep -qi '<html' <<<"$html" && grep -qw 4 <<<"$html" || fail "GET / as HTML (visit 4): $html"
    expect_eq "GET /visits" "$(count "$url")" 4
    expect_eq "GET /health" "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")" 200
    grep -qx 'visits_total 4' <<<"$(curl -s "$url/metrics")" || fail "/metrics has no 'visits_total 4'"
    log "ok: /metrics says visits_total 4"
    # kubectl exec pod -- cat /data/visits, and visitsctl get, inside the container.
    expect_eq "exec cat /data/visits" "$(podman exec "$NAME-c" cat /data/visits)" 4
    expect_eq "exec visitsctl get /data/visits" "$(podman exec "$NAME-c" visitsctl get /data/visits)" 4
    expect_eq "bytes on the host volume" "$(od -An -c "$dir/visits" | tr -s ' ')" " 4 \n"
    # The server process itself runs as 10001:10001 (seen from the host), on a read-only root.
    pid=$(podman inspect "$NAME-c" --format '{{.State.Pid}}')
    uid=$(awk '/^Uid:/ {print $2 ":" $3 ":" $4 ":" $5}' "/proc/$pid/status")
    expect_eq "server process uids (real:effective:saved:fs)" "$uid" "10001:10001:10001:10001"
    expect_eq "server process gid" "$(awk '/^Gid:/ {print $2}' "/proc/$pid/status")" 10001
    expect_eq "read-only root" "$(podman inspect "$NAME-c" --format '{{.HostConfig.ReadonlyRootfs}}')" true
    local err
    err=$(podman exec "$NAME-c" sh -c 'echo x > /usr/local/probe' 2>&1) && fail "writing / in the container worked"
    grep -q 'Read-only file system' <<<"$err" || fail "writing /: unexpected error: $err"
    log "ok: writing the root filesystem fails: Read-only file system"
    podman stop -t 10 "$NAME-c" >/dev/null
    expect_eq "exit status after podman stop" "$(exit_code "$NAME-c")" 0

    # A /data the user cannot write (no fsGroup, root-owned volume): a clear refusal.
    local bad out
    bad=$(mktemp -d "$state/tmp/$NAME-root.XXXXXX")
    chmod 0755 "$bad"
    podman run -d --name "$NAME-bad" --network "$NAME" --read-only -v "$bad:/data" "$IMAGE" >/dev/null
    wait_exit "$NAME-bad" 10 || fail "the server kept running on a /data it cannot write"
    ensure_cleaned "$NAME-bad"
    out=$(podman logs "$NAME-bad" 2>&1)
    expect_eq "exit status on an unwritable /data" "$(exit_code "$NAME-bad")" 1
    grep -q '/data' <<<"$out" || fail "the refusal does not name /data: $out"
    log "ok: unwritable /data refused: $(head -n 1 <<<"$out")"
}

step_persist() {
    begin_test
    podman volume create "$NAME-vol" >/dev/null
    local url i
    url=$(start "$NAME-a" "$NAME-vol")
    wait_ready "$url"
    for i in 1 2 3 4 5; do visit "$url" >/dev/null; done
    expect_eq "count in the first container" "$(count "$url")" 5
    podman stop -t 10 "$NAME-a" >/dev/null
    podman rm "$NAME-a" >/dev/null
    podman container exists "$NAME-a" && fail "container not removed"
    url=$(start "$NAME-b" "$NAME-vol")
    wait_ready "$url"
    expect_eq "count in a recreated container, same volume" "$(count "$url")" 5
    expect_eq "next visit" "$(visit "$url")" 6
    expect_eq "file in the volume" "$(cat "$(podman volume inspect "$NAME-vol" --format '{{.Mountpoint}}')/visits")" 6
}

# Send SIG to the container; print the milliseconds until it exited (bounded: 10 s).
signal_and_time() {
    local name=$1 how=$2 t0 t1
    t0=$(date +%s%N)
    case $how in
    stop) podman stop -t 10 "$name" >/dev/null ;;
    *) podman kill --signal "$how" "$name" >/dev/null && { wait_exit "$name" 10 || true; } ;;
    esac
    t1=$(date +%s%N)
    [[ $how == stop ]] || ensure_cleaned "$name"
    echo $(((t1 - t0) / 1000000))
}

step_signals() {
    begin_test
    local dir url ms n
    dir=$(data_dir)
    # 1. podman stop: the image's STOPSIGNAL, as the kubelet sends it.
    url=$(start "$NAME-1" "$dir")
    wait_ready "$url"
    visit "$url" >/dev/null
    ms=$(signal_and_time "$NAME-1" stop)
    expect_eq "exit status after podman stop" "$(exit_code "$NAME-1")" 0
    ((ms < 2000)) || fail "podman stop took $ms ms (> 2 s: the grace period would end in SIGKILL)"
    log "ok: stopped in $ms ms"
    # 2. SIGTERM while requests flow.
    url=$(start "$NAME-2" "$dir")
    wait_ready "$url"
    python3 "$here/load.py" "$url" 4 100000 3 >"$state/tmp/$NAME-load.json" &
    local lp=$!
    sleep 0.5
    ms=$(signal_and_time "$NAME-2" SIGTERM)
    wait $lp || true
    expect_eq "exit status after SIGTERM under load" "$(exit_code "$NAME-2")" 0
    ((ms < 2000)) || fail "SIGTERM under load took $ms ms to exit"
    local maxack
    maxack=$(json_field max_ack <"$state/tmp/$NAME-load.json")
    check_file "$dir/visits"
    n=$(cat "$dir/visits")
    ((n >= maxack)) || fail "file holds $n after SIGTERM, but $maxack was acknowledged"
    log "ok: SIGTERM under load: exit 0 in $ms ms, file $n >= acknowledged $maxack"
    # 3. SIGTERM with an idle keep-alive client connected (a browser, a load balancer).
    url=$(start "$NAME-3" "$dir")
    wait_ready "$url"
    local port=${url##*:}
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /visits HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n' >&3
    local line
    IFS= read -r -t 5 line <&3 || fail "no response on the keep-alive connection"
    [[ $line == "HTTP/1.1 200"* ]] || fail "keep-alive GET /visits: $line"
    ms=$(signal_and_time "$NAME-3" SIGTERM)
    exec 3<&-
    expect_eq "exit status after SIGTERM with an idle keep-alive client" "$(exit_code "$NAME-3")" 0
    ((ms < 2000)) || fail "SIGTERM with an idle keep-alive connection took $ms ms to exit"
    log "ok: idle keep-alive client: exit 0 in $ms ms"
}

step_kill() {
    begin_test
    local dir url stats maxack acked n round
    dir=$(data_dir)
    for round in always interval; do
        local sync=$round
        [[ $round == interval ]] && sync=interval:20
        url=$(start "$NAME-$round" "$dir" -e VISITS_SYNC="$sync")
        wait_ready "$url"
        python3 "$here/load.py" "$url" 8 500000 8 >"$state/tmp/$NAME-load.json" &
        local lp=$!
        sleep 1.5
        podman kill --signal SIGKILL "$NAME-$round" >/dev/null
        wait_exit "$NAME-$round" 10 || fail "$NAME-$round still runs 10 s after SIGKILL"
        ensure_cleaned "$NAME-$round"
        wait $lp || true
        stats=$(cat "$state/tmp/$NAME-load.json")
        expect_eq "exit status after SIGKILL ($round)" "$(exit_code "$NAME-$round")" 137
        acked=$(json_field acked <<<"$stats")
        maxack=$(json_field max_ack <<<"$stats")
        ((acked >= 100)) || fail "only $acked visits acknowledged before the kill: no real load ($stats)"
        check_file "$dir/visits"
        n=$(cat "$dir/visits")
        if [[ $round == always ]]; then
            # sync always: an acknowledged visit is on disk.
            ((n >= maxack)) || fail "after SIGKILL the file holds $n, but $maxack was acknowledged"
            ((n <= maxack + 8)) || fail "after SIGKILL the file holds $n, more than acknowledged $maxack + 8 in flight"
        else
            # interval: up to one interval of visits may be lost; the file is still valid
            # and never ahead of what was counted (acknowledged + one request per worker).
            ((n <= maxack + 8)) || fail "interval mode: the file holds $n > acknowledged $maxack + 8 in flight"
        fi
        log "ok: SIGKILL under load ($round): $acked visits acknowledged (max $maxack), file holds $n"
        # A new container reads the same value and clears the killed writer's temps
        # (libvisits 0.2 locks the counter file itself: no sibling lock file).
        url=$(start "$NAME-$round-after" "$dir")
        wait_ready "$url"
        expect_eq "count after restart ($round)" "$(count "$url")" "$n"
        expect_eq "files in the volume ($round)" "$(LC_ALL=C ls -A "$dir" | tr '\n' ' ')" "visits "
        podman stop -t 10 "$NAME-$round-after" >/dev/null
    done
}

# ---- the StatefulSet, played as pods
sts_render() { KUBECONFIG=/dev/null kubectl kustomize "$src/deploy/base" >"$state/tmp/$NAME-rendered.yaml"; }

# Play ordinal $1 of StatefulSet visits with image $2 on loopback port $3. Like the
# StatefulSet's governing headless Service, the network alias named by spec.serviceName
# resolves to the address of every pod that has it.
play_pod() {
    local i=$1 img=$2 port=$3 y=$state/tmp/$NAME-pod$i.yaml svc
    svc=$(sed -n 's/^  serviceName: *//p' "$state/tmp/$NAME-rendered.yaml")
    [[ -n $svc ]] || fail "the rendered StatefulSet has no spec.serviceName"
    node "$here/expand-statefulset.mjs" "$state/tmp/$NAME-rendered.yaml" visits "$i" \
        --image "$img" --host-port "$port" >"$y"
    podman kube play --network "$NAME:alias=$svc" "$y" >/dev/null 2>"$state/tmp/$NAME-play.err" || {
        cat "$state/tmp/$NAME-play.err" >&2
        fail "podman kube play visits-$i failed"
    }
}

# Delete pod visits-$1 the way the kubelet does: SIGTERM (exit 0, quickly), then remove.
delete_pod() {
    local c=visits-$1-visits ms
    ms=$(signal_and_time "$c" stop)
    expect_eq "visits-$1 exit status on deletion" "$(exit_code "$c")" 0
    ((ms < 2000)) || fail "visits-$1 took $ms ms to stop"
    podman pod rm -f -t 0 "visits-$1" >/dev/null
}

# The headless Service's name as the pods resolve it: one address per pod; the servers'
# VISITS_PEERS_DNS names it.
check_cluster_dns() {
    local svc addrs ips peers
    svc=$(sed -n 's/^  serviceName: *//p' "$state/tmp/$NAME-rendered.yaml")
    addrs=$(podman exec visits-0-visits getent ahosts "$svc" | awk '$2 == "STREAM" {print $1}' | sort)
    ips=$(for i in 0 1; do
        podman inspect "visits-$i-visits" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'
    done | sort)
    expect_eq "addresses of $svc seen from visits-0 (those of visits-0 and visits-1)" \
        "$(tr '\n' ' ' <<<"$addrs")" "$(tr '\n' ' ' <<<"$ips")"
    expect_eq "number of addresses of $svc" "$(wc -l <<<"$addrs")" 2
    peers=$(podman exec visits-0-visits printenv VISITS_PEERS_DNS)
    expect_eq "VISITS_PEERS_DNS in visits-0" "$peers" "$svc:8080"
}

step_statefulset() {
    begin_test node kubectl
    [[ -d $src/tests/deploy/node_modules ]] || fail "tests/deploy/node_modules missing (the deploy.npm test installs it)"
    # Pod names are fixed by the StatefulSet (visits-0, visits-1): refuse to touch pods
    # that are not ours.
    podman pod exists visits-0 || podman pod exists visits-1 && fail "pods visits-0/visits-1 already exist in $state"
    trap 'podman pod rm -f -t 0 visits-0 visits-1 >/dev/null 2>&1 || true; cleanup_test' EXIT
    sts_render
    local replicas
    replicas=$(sed -n 's/^  replicas: *//p' "$state/tmp/$NAME-rendered.yaml")
    expect_eq "deploy/base replicas" "$replicas" 2
    local -a port url
    local i c
    for i in 0 1; do
        for c in $(node "$here/expand-statefulset.mjs" "$state/tmp/$NAME-rendered.yaml" visits "$i" --claims); do
            # One volume per pod and claim (data-visits-N), as a PVC per ordinal.
            podman volume create "$c" >/dev/null
        done
        port[i]=$(free_port)
        url[i]=http://127.0.0.1:${port[i]}
        play_pod "$i" "$IMAGE" "${port[i]}"
    done
    trap 'podman pod rm -f -t 0 visits-0 visits-1 >/dev/null 2>&1 || true; podman volume rm -f data-visits-0 data-visits-1 >/dev/null 2>&1 || true; cleanup_test' EXIT
    for i in 0 1; do wait_ready "${url[i]}"; done
    # Each pod counts on its own volume.
    for i in 1 2 3; do visit "${url[0]}" >/dev/null; done
    for i in 1 2 3 4 5; do visit "${url[1]}" >/dev/null; done
    expect_eq "visits-0 /visits" "$(get "${url[0]}/visits")" '{"visits":3,"pod":"visits-0"}'
    expect_eq "visits-1 /visits" "$(get "${url[1]}/visits")" '{"visits":5,"pod":"visits-1"}'
    # GET /cluster on either pod: both counts and the total, found through the headless
    # Service's name (VISITS_PEERS_DNS from deploy/base), which resolves to both pods.
    check_cluster_dns
    local both='{"total":8,"complete":true,"pods":[{"pod":"visits-0","visits":3,"ok":true},{"pod":"visits-1","visits":5,"ok":true}]}'
    expect_eq "visits-0 /cluster" "$(get "${url[0]}/cluster")" "$both"
    expect_eq "visits-1 /cluster" "$(get "${url[1]}/cluster")" "$both"
    # A pod that is listed but does not answer (frozen): a partial answer that says so,
    # within the peer timeout.
    podman pause visits-1-visits >/dev/null
    local partial t0 t1
    t0=$(date +%s%N)
    partial=$(get "${url[0]}/cluster")
    t1=$(date +%s%N)
    podman unpause visits-1-visits >/dev/null
    python3 - "$partial" <<'PY' || fail "visits-0 /cluster with visits-1 frozen: $partial"
import json, sys
d = json.loads(sys.argv[1])
assert d["total"] == 3 and d["complete"] is False, d
assert d["pods"][0] == {"pod": "visits-0", "visits": 3, "ok": True}, d
bad = d["pods"][1]
assert len(d["pods"]) == 2 and bad["ok"] is False and bad["pod"] == "?", d
assert bad["address"].endswith(":8080") and bad["error"].startswith("timeout"), d
PY
    (((t1 - t0) / 1000000 < 2000)) || fail "/cluster with a frozen peer took $(((t1 - t0) / 1000000)) ms"
    log "ok: visits-0 /cluster with visits-1 frozen, in $(((t1 - t0) / 1000000)) ms: $partial"
    expect_eq "visits-0 /cluster after visits-1 thawed" "$(get "${url[0]}/cluster")" "$both"
    expect_eq "kubectl-exec-style cat in visits-1" "$(podman exec visits-1-visits cat /data/visits)" 5
    expect_eq "visits-1 threads from limits.cpu" "$(podman exec visits-1-visits printenv VISITS_THREADS)" 1
    # The pod's securityContext, applied: user, read-only root, no capabilities.
    expect_eq "visits-0 user, read-only root, capabilities" \
        "$(podman inspect visits-0-visits --format '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.EffectiveCaps}}')" \
        "$UID_GID true []"
    # Delete and recreate a pod: it gets its own claim back.
    delete_pod 0
    play_pod 0 "$IMAGE" "${port[0]}"
    wait_ready "${url[0]}"
    expect_eq "visits-0 count after delete + recreate" "$(count "${url[0]}")" 3
    expect_eq "visits-1 count meanwhile" "$(count "${url[1]}")" 5
    expect_eq "visits-0 next visit" "$(visit "${url[0]}")" 4

    # Rolling image change, highest ordinal first, one pod at a time, as the StatefulSet
    # controller does; the other pod keeps serving throughout.
    local b
    b=$(buildah from --pull=never "$IMAGE")
    buildah config --label org.opencontainers.image.revision=rollout "$b" >/dev/null
    buildah commit --quiet --format docker "$b" "$IMAGE2" >/dev/null
    buildah rm "$b" >/dev/null
    local want=(4 5) other prober
    for i in 1 0; do
        other=$((1 - i))
        # Bounded prober of the other pod: 0.05 s period, until told to stop (max 30 s).
        (
            fails=0 probes=0
            for _ in $(seq 600); do
                [[ -e $state/tmp/$NAME-stop ]] && break
                curl -sf --max-time 1 -o /dev/null "${url[other]}/ready" || fails=$((fails + 1))
                probes=$((probes + 1))
                sleep 0.05
            done
            echo "$fails $probes" >"$state/tmp/$NAME-fails"
        ) &
        prober=$!
        delete_pod "$i"
        play_pod "$i" "$IMAGE2" "${port[i]}"
        wait_ready "${url[i]}"
        touch "$state/tmp/$NAME-stop"
        wait "$prober"
        rm -f "$state/tmp/$NAME-stop"
        expect_eq "visits-$i image after its update" "$(podman inspect "visits-$i-visits" --format '{{.ImageName}}')" "$IMAGE2"
        expect_eq "visits-$other image while visits-$i updates" "$(podman inspect "visits-$other-visits" --format '{{.ImageName}}')" \
            "$([[ $other -gt $i ]] && echo "$IMAGE2" || echo "$IMAGE")"
        local fails probes
        read -r fails probes <"$state/tmp/$NAME-fails"
        ((probes >= 5)) || fail "only $probes readiness checks of visits-$other while visits-$i was replaced"
        expect_eq "visits-$other failed readiness checks (of $probes) while visits-$i was replaced" "$fails" 0
        expect_eq "visits-$i count after its update" "$(count "${url[i]}")" "${want[i]}"
        expect_eq "visits-$other count while visits-$i updated" "$(count "${url[other]}")" "${want[other]}"
    done
    expect_eq "visits-0 next visit on the new image" "$(visit "${url[0]}")" 5
    expect_eq "visits-1 next visit on the new image" "$(visit "${url[1]}")" 6
    expect_eq "visitsctl get in visits-0" "$(podman exec visits-0-visits visitsctl get /data/visits)" 5
    expect_eq "visits-1 /cluster on the new image" "$(get "${url[1]}/cluster")" \
        '{"total":11,"complete":true,"pods":[{"pod":"visits-0","visits":5,"ok":true},{"pod":"visits-1","visits":6,"ok":true}]}'
    # deploy/base sets VISITS_LOG_FORMAT=json: every line a pod writes is one JSON object.
    local logs=$state/tmp/$NAME-visits-1.log
    podman logs visits-1-visits >"$logs" 2>&1
    python3 - "$logs" <<'PY' || fail "visits-1's log is not one JSON object per line: $(head -c 800 "$logs")"
import json, sys
docs = [json.loads(line) for line in open(sys.argv[1], "rb").read().decode("utf-8").split("\n")[:-1]]
assert docs and all(d["pod"] == "visits-1" and d["level"] in ("info", "error") for d in docs), docs[:3]
assert docs[0]["msg"].startswith("listening on http://"), docs[0]
assert any(d["msg"] == "access" and d["method"] == "GET" and d["path"] == "/cluster"
           and d["status"] == 200 for d in docs), docs
PY
    log "ok: visits-1 wrote $(wc -l <"$logs") lines, each one JSON object"
    for i in 0 1; do delete_pod "$i"; done
}

case $step in
image) step_image ;;
config) step_config ;;
http) step_http ;;
persist) step_persist ;;
signals) step_signals ;;
kill) step_kill ;;
statefulset) step_statefulset ;;
cleanup)
    remove_state
    log "removed $state"
    ;;
*) fail "unknown step $step" ;;
esac
