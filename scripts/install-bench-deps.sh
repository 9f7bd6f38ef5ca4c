#!/usr/bin/env bash
# Installs what native-bench/ needs from Debian packages, only what is missing:
#   nginx (upstream + proxy peer), libnginx-mod-http-lua (nginx+Lua peer),
#   haproxy, varnish (cache scenario peer), wrk (closed loop), nghttp2-client
#   (h2load --h1 --rps, open loop), curl (body checksums).
# The bench never uses the system nginx/haproxy/varnish services: each peer runs from
# its own temp prefix (varnishd: its own -n directory) on unprivileged loopback ports.
# Debian's postinst starts a system nginx on port 80 (and varnish on 6081) after
# install; we stop them so they do not steal CPU from the measurement, and never
# depend on them.
set -euo pipefail

need=()
command -v nginx   >/dev/null 2>&1 || need+=(nginx)
# ngx_lua ships as a dynamic module; its presence is a file, not a command.
ls /usr/lib/nginx/modules/ngx_http_lua_module.so >/dev/null 2>&1 || need+=(libnginx-mod-http-lua)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v varnishd >/dev/null 2>&1 || need+=(varnish)
command -v wrk     >/dev/null 2>&1 || need+=(wrk)
command -v h2load  >/dev/null 2>&1 || need+=(nghttp2-client)
command -v curl    >/dev/null 2>&1 || need+=(curl)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-bench-deps: everything is present (nginx, ngx_lua, haproxy, varnish, wrk, h2load, curl)"
  exit 0
fi

echo "install-bench-deps: missing: ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    cat >&2 <<MSG
install-bench-deps: not root and no password-less sudo. Ask an administrator to run:

  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}
  sudo service nginx stop; sudo service haproxy stop; sudo service varnish stop   # the bench never uses the system services

or run this script as root. Nothing was installed.
MSG
    exit 1
  fi
else
  SUDO=
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-bench-deps: apt-get not found; install these with your package manager: ${need[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# policy-rc.d exit 101 keeps Debian's postinst from auto-starting system nginx/haproxy/varnish
# (no port 80 listener, no CPU taken from the bench); removed again right after.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[ $created_policy -eq 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"

# If a system service got started anyway (policy-rc.d was already there and allowed it),
# stop it: we never depend on it, and it would compete for CPU.
for svc in nginx haproxy varnish; do
  if command -v service >/dev/null 2>&1 && service "$svc" status >/dev/null 2>&1; then
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  fi
done
echo "install-bench-deps: done"
