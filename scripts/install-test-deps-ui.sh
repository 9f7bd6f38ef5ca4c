#!/usr/bin/env bash
# Installs headless Chromium (Debian package `chromium`) for the admin status-page
# test (test/integration/status-page.test.ts). Idempotent: does nothing when a
# chromium binary is already on PATH. No playwright/puppeteer browser download.
set -euo pipefail

for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then
    echo "install-test-deps-ui: $b is present ($(command -v "$b"))"
    exit 0
  fi
done

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    echo "install-test-deps-ui: need root (or passwordless sudo) to apt-get install chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "install-test-deps-ui: chromium still missing after install" >&2; exit 1; }
echo "install-test-deps-ui: installed $(chromium --version 2>/dev/null || echo chromium)"
