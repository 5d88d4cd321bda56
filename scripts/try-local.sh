#!/usr/bin/env bash
# The whole flow without an AWS account: installs and starts what is missing (docker
# engine, a local stand-in build image with Python 3.13, the S3 + Lambda emulator on
# 127.0.0.1:5077; see test-env.sh), then builds, checks and publishes the example layers
# to the `local` profile, twice: the second run finds nothing changed.
# Run it as root or as a user with sudo, on Debian/Ubuntu: only the steps that need root
# (apt-get, dockerd, debootstrap) run through sudo, and only when something is missing.
# Real builds use the SAM images instead.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/test-env.sh)"
# The emulator accepts any credentials; the local profile names no AWS profile.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
images=(--image "$XTASK_TEST_IMAGE" --check-image "$XTASK_TEST_IMAGE")
cargo xtask bootstrap --profile local
cargo xtask publish-all --profile local "${images[@]}"
echo "--- second run: nothing changed, nothing published" >&2
cargo xtask publish-all --profile local "${images[@]}"
echo "--- published/local.json" >&2
cat published/local.json
