#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, trust auth for loopback) and RabbitMQ (127.0.0.1:5672,
# guest/guest) are reachable: start them when installed, install them from Debian's packages when
# missing and we are root, otherwise say exactly what to do. Idempotent; quiet when all is up.
set -euo pipefail

PGPORT="${PGPORT:-5432}"
AMQPPORT="${AMQPPORT:-5672}"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do port_open "$1" && return 0; sleep 0.5; done
  echo "error: $2 did not come up on 127.0.0.1:$1 within $3 s" >&2
  return 1
}

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "error: $1 is not installed. Install it (Debian: sudo apt-get install -y $2) and run this again." >&2
    exit 1
  fi
}

apt_install() {
  need_root "$1" "$2"
  echo "installing $2 from Debian's packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$2" >/dev/null
}

ensure_postgres() {
  port_open "$PGPORT" && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install PostgreSQL postgresql
  fi
  local ver hba
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  # Tests and local runs connect over loopback without a password, as on the development machines.
  if [ -w "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  echo "starting PostgreSQL $ver..." >&2
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster "$ver" main start
  wait_port "$PGPORT" PostgreSQL 60
}

ensure_rabbitmq() {
  port_open "$AMQPPORT" && return 0
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install RabbitMQ rabbitmq-server
  fi
  echo "starting RabbitMQ..." >&2
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port "$AMQPPORT" RabbitMQ 120
}

# The end-to-end test runs the Python examples (requests, Flask). Prints the interpreter to use:
# python3 when it has them, else a virtualenv under target/ with examples/python/requirements.txt.
ensure_python() {
  local here
  here="$(cd "$(dirname "$0")/.." && pwd)"
  if ! command -v python3 >/dev/null 2>&1; then
    apt_install Python3 python3
  fi
  if python3 -c 'import requests, flask' >/dev/null 2>&1; then
    command -v python3
    return 0
  fi
  python_venv "$here/target/pyenv" 'import requests, flask' "the Python examples' packages" \
    -r "$here/examples/python/requirements.txt"
}

# A virtualenv at $1 whose Python runs $2, made with `pip install $4...` when it does not (what
# for: $3); prints its interpreter.
python_venv() {
  local venv="$1" check="$2" what="$3"
  shift 3
  if ! "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "installing $what into $venv..." >&2
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv python3-venv
      python3 -m venv "$venv" >/dev/null
    fi
    "$venv/bin/pip" install -q "$@" >&2
  fi
  echo "$venv/bin/python"
}

# The API's text-to-speech engine for prompts (tests speak through it).
ensure_speech() {
  if ! command -v espeak-ng >/dev/null 2>&1; then
    apt_install espeak-ng espeak-ng
  fi
}

# Headless Chromium and its WebDriver, for the console's browser tests (devkit/tests/it/console/),
# which fail without them. Debian's packages; chromium-driver provides /usr/bin/chromedriver.
ensure_browser() {
  if ! [ -x /usr/bin/chromium ]; then
    apt_install Chromium chromium
  fi
  if ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromedriver chromium-driver
  fi
}

# A local S3-compatible server (moto, from PyPI) for the recordings store's S3 test; prints the
# interpreter that runs it.
ensure_s3() {
  local here
  here="$(cd "$(dirname "$0")/.." && pwd)"
  python_venv "$here/target/pyenv-s3" 'import moto.server' "moto (a local S3-compatible server)" \
    "moto[server]>=5,<6"
}

# iptables, for the fault suite's network partitions (scripts/faults; not CI).
ensure_iptables() {
  if ! command -v iptables >/dev/null 2>&1; then
    apt_install iptables iptables
  fi
}

case "${1:-all}" in
  postgres) ensure_postgres ;;
  rabbitmq) ensure_rabbitmq ;;
  python) ensure_python ;;
  speech) ensure_speech ;;
  browser) ensure_browser ;;
  s3) ensure_s3 ;;
  iptables) ensure_iptables ;;
  all) ensure_postgres; ensure_rabbitmq; ensure_speech ;;
  *) echo "usage: $0 [all|postgres|rabbitmq|python|speech|browser|s3|iptables]" >&2; exit 2 ;;
esac
