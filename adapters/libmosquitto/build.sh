#!/bin/sh
# Build the libmosquitto adapter: adapters/libmosquitto/build.sh [OUT]
# OUT defaults to adapters/libmosquitto/mosquitto-adapter (next to this script).
# Needs a C compiler, libmosquitto (>= 2.0) and cJSON headers and libraries;
# on Debian/Ubuntu: apt-get install -y gcc libmosquitto-dev libcjson-dev
# Exits 2 when something is missing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-"$here/mosquitto-adapter"}
CC=${CC:-cc}

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "build.sh: no C compiler ($CC); install gcc or set CC" >&2
    exit 2
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/probe.c" <<'C'
#include <cjson/cJSON.h>
#include <mosquitto.h>
int main(void) { cJSON_Delete(cJSON_CreateObject()); return mosquitto_lib_init(); }
C
if ! "$CC" -o "$probe/probe" "$probe/probe.c" -lmosquitto -lcjson >"$probe/log" 2>&1; then
    sed 's/^/  /' "$probe/log" >&2
    echo "build.sh: libmosquitto or cJSON headers/libraries are missing;" \
        "install them (Debian/Ubuntu: apt-get install -y libmosquitto-dev libcjson-dev)" >&2
    exit 2
fi
"$CC" -std=c11 -O1 -Wall -Wextra -Werror -o "$OUT" "$here/adapter.c" -lmosquitto -lcjson
echo "built $OUT"
