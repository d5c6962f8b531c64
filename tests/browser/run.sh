#!/bin/sh
# ctest driver of the browser test (label "browser"): node runs pages.mjs, which drives
# Debian's chromium. A missing node skips loudly (exit 77), except under CI=true.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
        echo "FAIL: node not found (apt-get install nodejs; CI=true: the browser test may not be skipped)" >&2
        exit 1
    fi
    echo "SKIP: node not found (apt-get install nodejs)" >&2
    exit 77
fi
exec node "$here/pages.mjs"
