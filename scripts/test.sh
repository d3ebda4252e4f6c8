#!/bin/sh
# The test suite with everything it needs, on a fresh Debian/Ubuntu machine:
#   * a venv with the package and its dev extra;
#   * a real Secret Service (gnome-keyring in a private D-Bus session, unlocked with a throwaway
#     password and a throwaway data directory), so the encrypted token cache stores its key in a
#     real OS keyring; ENTRA_IDENTITY_REQUIRE_KEYRING=1 makes a missing keyring fail the keyring
#     tests instead of skipping them;
#   * a real Chromium (Debian's chromium package), which tests/browser drives headless over the
#     DevTools protocol for the browser sign-in tests; ENTRA_IDENTITY_REQUIRE_CHROMIUM=1 makes a
#     missing Chromium fail those tests instead of skipping them.
# Arguments are passed to pytest.
set -eu
cd "$(dirname "$0")/.."

missing=""
if ! command -v dbus-run-session >/dev/null 2>&1 || ! command -v gnome-keyring-daemon >/dev/null 2>&1; then
    missing="gnome-keyring dbus"
fi
if ! command -v chromium >/dev/null 2>&1; then
    # Headless needs nothing beyond the package's own dependencies (no X server, no fonts).
    missing="$missing chromium"
fi
if [ -n "$missing" ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    # shellcheck disable=SC2086  # a list of package names
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'

keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
XDG_DATA_HOME="$keyring_home" ENTRA_IDENTITY_REQUIRE_KEYRING=1 ENTRA_IDENTITY_REQUIRE_CHROMIUM=1 \
    dbus-run-session -- sh -c '
    printf "entra-identity-tests" | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
    exec .venv/bin/python -m pytest -q "$@"
' pytest "$@"
