#!/usr/bin/env bash
# The one command that runs every test: it installs and starts what is missing (docker
# engine, the local test build image, the S3 + Lambda emulator; see test-env.sh), then
# runs the unit tests and the integration tests against them. Run it as root on a fresh
# Debian/Ubuntu machine, or as a user with sudo: only the steps that need root (apt-get,
# dockerd, debootstrap) run through sudo, and only when something is missing.
#   scripts/test.sh              # everything
#   scripts/test.sh -- NAME      # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/test-env.sh)"
export XTASK_REQUIRE_INTEGRATION=1
# Both binaries first, as `cargo xtask` builds them: the tests run the xtask binary, which
# hands the AWS commands to `cargo run -p xtask-aws` (then already current).
cargo build --locked -p xtask -p xtask-aws
cargo test --locked --workspace "$@"
