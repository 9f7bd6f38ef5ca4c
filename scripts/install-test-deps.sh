#!/usr/bin/env bash
# Installs the system packages the test suite itself needs (not the benchmark's, see
# install-bench-deps.sh), only what is missing:
#   dnsmasq-base — the dnsmasq binary: a real DNS server the DNS discovery tests
#             start on a random loopback port (test/integration/discovery-dns.test.ts).
#             dnsmasq-base ships no system service, so nothing listens on port 53.
#   openssl — the command line tool: TLS tests make their certificates with it
#             (test/helpers/certs.ts).
#   redis-server — Redis 7: the cluster-wide rate-limit tests start their own on a
#             random loopback port with its own data directory (test/helpers/redis.ts).
#   etcd-server — etcd 3.4: the etcd config-source tests start their own the same way
#             (test/helpers/etcd.ts). Debian starts neither package as a service here
#             (no init in containers); the tests never use a system instance.
# Idempotent: exits 0 at once when everything is present.
set -euo pipefail

need=()
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-test-deps: everything is present (dnsmasq, openssl, redis-server, etcd)"
  exit 0
fi

echo "install-test-deps: missing: ${need[*]}"
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    cat >&2 <<MSG
install-test-deps: not root and no password-less sudo. Ask an administrator to run:

  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}

or run this script as root. Nothing was installed.
MSG
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
echo "install-test-deps: installed ${need[*]}"
