#!/usr/bin/env bash
# The README's main command: installs what the build needs (as root on
# Debian 12; a user with sudo is asked for it once, a user without it
# builds with what is installed), builds, starts a simulated training run
# that drops a checkpoint every few seconds, and runs the daemon on it in
# the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null && [ -z "${SPECTRUMD_NO_SUDO:-}" ]; then
	exec sudo --preserve-env=SPECTRUMD_DEMO_DIR,SPECTRUMD_DEMO_PORT "$0" "$@"
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends build-essential curl \
		autoconf automake libtool pkg-config libmicrohttpd-dev \
		libcjson-dev libsqlite3-dev libpcre2-dev libxxhash-dev libopenblas-dev liblapacke-dev \
		>/dev/null
	command -v npm >/dev/null ||
		apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ -f package-lock.json ] && command -v npm >/dev/null; then
	npm ci --silent --no-audit --no-fund >/dev/null 2>&1 ||
		echo "demo: npm ci failed: the dashboard will show tables only"
fi
[ -x configure ] || autoreconf -fi >/dev/null 2>&1
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" >/dev/null
make web-assets >/dev/null 2>&1 || true

demo=${SPECTRUMD_DEMO_DIR:-/tmp/spectrumd-demo}
port=${SPECTRUMD_DEMO_PORT:-8420}
rm -rf "$demo"
mkdir -p "$demo"
./tests/spectrumd-fixture run "$demo/run" --every 4 --count 30 \
	--layers 12 --hidden 256 --intermediate 688 --vocab 2048 --shards 2 \
	--save-total-limit 12 --step-every 50 >"$demo/trainer.log" 2>&1 &
trainer=$!
./spectrumd --watch "demo=$demo/run" --db "$demo/spectrumd.db" \
	--listen "127.0.0.1:$port" --web-dir "$top/web" --settle-ms 500 &
daemon=$!
trap 'kill $trainer $daemon 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
# The URLs only once the daemon answers (it may fail to start: port in use).
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
	kill -0 $daemon 2>/dev/null || { wait $daemon; exit $?; }
	sleep 0.1
done
cat <<TXT
spectrumd demo: a simulated trainer writes $demo/run/checkpoint-* every 4 s.
  dashboard   http://127.0.0.1:$port/
  selection   http://127.0.0.1:$port/selection        (?format=yaml for Axolotl)
  checkpoints http://127.0.0.1:$port/checkpoints
  metrics     http://127.0.0.1:$port/metrics
Ctrl-C to stop.
TXT
wait $daemon
