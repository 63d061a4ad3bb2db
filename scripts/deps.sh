#!/bin/sh
# Installs what tapegrad needs to build and test, when it is missing:
# a C compiler (and g++) and make, pkg-config, Check (unit tests), stb (stb_ds.h),
# cJSON (safetensors headers), Open MPI; Chromium and python3-websocket for
# the browser test (optional: see below). As root it runs apt-get; otherwise
# it prints the exact command to run and stops.
set -e
missing=""
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
# g++: the public headers are checked as C++, and a C++ program is built
# against the installed library (tests/install.sh)
command -v g++ >/dev/null 2>&1 || missing="$missing g++"
command -v make >/dev/null 2>&1 || missing="$missing make"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
pc() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }
pc check || missing="$missing check"
[ -f /usr/include/stb/stb_ds.h ] || missing="$missing libstb-dev"
pc libcjson || missing="$missing libcjson-dev"
# Open MPI: data-parallel training (make MPI=1) and its tests
command -v mpicc >/dev/null 2>&1 || missing="$missing libopenmpi-dev"
command -v mpirun >/dev/null 2>&1 || missing="$missing openmpi-bin"
# Chromium (headless) and python3-websocket, which drives it: the browser
# test of the explorer's pages (tests/explorer.sh). Optional: installed
# when we are root, otherwise named, and the test skips without them.
optional=""
command -v chromium >/dev/null 2>&1 || optional="$optional chromium"
/usr/bin/python3 -c 'import websocket' >/dev/null 2>&1 ||
    optional="$optional python3-websocket"
for extra in "$@"; do
    case "$extra" in
    fortunes) [ -d /usr/share/games/fortunes ] || missing="$missing fortunes" ;;
    chromium) missing="$missing$optional"; optional="" ;;
    *) missing="$missing $extra" ;;
    esac
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing="$missing$optional"
elif [ -n "$optional" ]; then
    echo "deps: optional, for the browser test of the explorer:$optional" \
         "(sudo apt-get install -y$optional)"
fi
[ -z "$missing" ] && exit 0
cmd="apt-get update && apt-get install -y$missing"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq$missing >/dev/null
else
    echo "deps: missing$missing. Install them with:"
    echo "    sudo sh -c '$cmd'"
    exit 1
fi
