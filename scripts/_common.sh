# Shared by scripts/serve-example and scripts/test: system packages and the venv.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing system packages: ${missing[*]}" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# phonenumbers' area and carrier tables are ~100 MB of Python source: where
# PYTHONDONTWRITEBYTECODE is set (some CI images set it) every process that
# loads them compiles them again, 7 s of CPU per CLI command or server start.
# Compile them once, after the install.
precompile_tables() {
    local dir
    dir="$(.venv/bin/python -c 'import os, phonenumbers; print(os.path.dirname(phonenumbers.__file__))')"
    .venv/bin/python -m compileall -q -j0 "$dir" >/dev/null || true
}

PYTHON="${PYTHON:-python3}"
make_venv() {
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
}

# The real Asterisk for tests/asterisk: built from ../shared/asterisk (when it
# is beside this checkout and no Asterisk is given) in the background.
ASTERISK_BUILD=../shared/asterisk/build.sh
ASTERISK_BUILD_LOG="${TMPDIR:-/tmp}/agi-server-asterisk-build.$$.log"
ASTERISK_BUILD_PID=""
start_asterisk_build() {
    if [ -n "${AGI_SERVER_TEST_ASTERISK:-}" ] || command -v asterisk >/dev/null 2>&1 || [ ! -x "$ASTERISK_BUILD" ]; then
        return 0
    fi
    echo "building the real Asterisk 22 for tests/asterisk in the background ($ASTERISK_BUILD, log $ASTERISK_BUILD_LOG)" >&2
    "$ASTERISK_BUILD" >"$ASTERISK_BUILD_LOG" 2>&1 &
    ASTERISK_BUILD_PID=$!
}
wait_asterisk_build() {
    [ -n "$ASTERISK_BUILD_PID" ] || return 0
    if ! wait "$ASTERISK_BUILD_PID"; then
        tail -40 "$ASTERISK_BUILD_LOG" >&2
        echo "the Asterisk build failed: the real-Asterisk tests cannot run" >&2
        exit 1
    fi
    AGI_SERVER_TEST_ASTERISK="$(tail -n 1 "$ASTERISK_BUILD_LOG")"
    export AGI_SERVER_TEST_ASTERISK
    ASTERISK_BUILD_PID=""
    echo "real Asterisk: $AGI_SERVER_TEST_ASTERISK" >&2
}
