#!/usr/bin/env bash
# The one command that runs every test: it installs and starts what is missing (docker
# engine, the local test build image, the S3 + Lambda emulator; see test-env.sh), then
# runs the unit tests and the integration tests against them. Run as root on a fresh
# Debian/Ubuntu machine, or as a user who can run apt-get/dockerd through sudo.
#   scripts/test.sh              # everything
#   scripts/test.sh -- NAME      # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) != 0 ]] && ! docker info >/dev/null 2>&1; then
  eval "$(sudo --preserve-env=PIP_CERT,PIP_INDEX_URL,PIP_EXTRA_INDEX_URL,PIP_TRUSTED_HOST scripts/test-env.sh)"
else
  eval "$(scripts/test-env.sh)"
fi
export XTASK_REQUIRE_INTEGRATION=1
cargo test --locked --workspace "$@"
