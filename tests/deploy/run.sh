#!/bin/sh
# ctest driver of the deploy tests (label "deploy").
#   run.sh npm                  install tests/deploy/node_modules from the lockfile if missing
#   run.sh render DIR KIND...   kubectl kustomize DIR renders, with at least these kinds
#   run.sh check ARGS...        node check-manifests.mjs ARGS...
#   run.sh rules ARGS...        node rules.mjs ARGS... (promtool check/test rules)
#   run.sh docs SRC FILE...     every deploy/... path the files name exists, and every
#                               `kubectl apply -k DIR` they show renders
# A missing tool skips the test loudly (exit 77), except under CI=true, where it fails.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

skip() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: $* (CI=true: the deploy tests may not be skipped)" >&2
        exit 1
    fi
    echo "SKIP: $*" >&2
    exit 77
}
need() {
    for t in "$@"; do
        case $t in
        node | npm) hint="apt-get install nodejs npm" ;;
        kubectl) hint="kubectl 1.32: https://kubernetes.io/docs/tasks/tools/" ;;
        promtool) hint="apt-get install prometheus" ;;
        *) hint="apt-get install $t" ;;
        esac
        command -v "$t" >/dev/null 2>&1 || skip "$t not found in PATH ($hint)"
    done
}

mode=$1
shift
case $mode in
npm)
    need node npm
    # One installer at a time, also across build directories sharing this source tree.
    exec 9>"$here/.npm-install.lock"
    flock 9
    if [ -f "$here/node_modules/.package-lock.json" ] &&
        [ ! "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
        echo "node_modules is up to date"
        exit 0
    fi
    cd "$here"
    npm ci --no-audit --no-fund --loglevel=error
    ;;
render)
    need kubectl
    dir=$1
    shift
    out=$(KUBECONFIG=/dev/null kubectl kustomize "$dir")
    for kind in "$@"; do
        printf '%s\n' "$out" | grep -qx "kind: $kind" || {
            echo "FAIL: $dir renders no $kind" >&2
            exit 1
        }
    done
    echo "$dir renders $(printf '%s\n' "$out" | grep -c '^kind: ') objects: $*"
    ;;
check)
    need kubectl node
    [ -d "$here/node_modules" ] || skip "$here/node_modules missing (run: $0 npm)"
    for a in "$@"; do
        case $a in
        MISSING-SERVER) skip "visits-server is not built (VISITS_BUILD_SERVER=OFF): cannot ask it for its routes" ;;
        esac
    done
    exec node "$here/check-manifests.mjs" "$@"
    ;;
rules)
    need node promtool
    [ -d "$here/node_modules" ] || skip "$here/node_modules missing (run: $0 npm)"
    exec node "$here/rules.mjs" "$@"
    ;;
docs)
    need kubectl
    src=$1
    shift
    status=0
    for f in "$@"; do
        # deploy/... as a path of its own (not the tail of tests/deploy/...)
        for p in $(grep -oE '(^|[^A-Za-z0-9_./-])deploy/[A-Za-z0-9_./-]*' "$f" | sed 's/^[^d]//; s/[.]*$//' | sort -u); do
            [ -e "$src/$p" ] || {
                echo "FAIL: $f names $p, which does not exist" >&2
                status=1
            }
        done
        for d in $(sed -n 's/.*kubectl apply -k \(deploy\/[A-Za-z0-9_./-]*\).*/\1/p' "$f" | sort -u); do
            if KUBECONFIG=/dev/null kubectl kustomize "$src/$d" >/dev/null; then
                echo "$f: kubectl apply -k $d renders"
            else
                echo "FAIL: $f: kubectl apply -k $d does not render" >&2
                status=1
            fi
        done
    done
    exit $status
    ;;
*)
    echo "run.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
