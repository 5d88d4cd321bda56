#!/usr/bin/env bash
# The whole flow without an AWS account: installs and starts what is missing (docker
# engine, a local stand-in build image with Python 3.13, the S3 + Lambda emulator on
# 127.0.0.1:5077; see test-env.sh), then builds, checks and publishes the example layers
# to the `local` profile, twice: the second run finds nothing changed. The stand-in image
# and the emulator's endpoint go into layers.local.toml, so every command (status, check,
# rollout, ...) afterwards agrees without flags.
# Run it as root or as a user with sudo, on Debian/Ubuntu: only the steps that need root
# (apt-get, dockerd, debootstrap) run through sudo, and only when something is missing.
# Real builds use the SAM images instead.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/test-env.sh)"
# The emulator accepts any credentials; the local profile names no AWS profile.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
# This machine's settings, read by every command (git-ignored; README, "layers.local.toml"):
# the stand-in image builds and checks, and the emulator is where test-env.sh started it.
# An existing file is the user's: kept as it is.
if [[ -e layers.local.toml ]]; then
  echo "--- layers.local.toml exists: kept as it is (cargo xtask list shows what it sets)" >&2
else
  cat > layers.local.toml <<EOF
# This machine's settings (git-ignored), written by scripts/try-local.sh.
image = "$XTASK_TEST_IMAGE"
check_image = "$XTASK_TEST_IMAGE"

[profiles.local]
endpoint_url = "$XTASK_TEST_ENDPOINT"
EOF
  echo "--- wrote layers.local.toml: every command builds and checks in $XTASK_TEST_IMAGE" >&2
fi
cargo xtask list
cargo xtask bootstrap --profile local
cargo xtask publish-all --profile local
echo "--- second run: nothing changed, nothing published" >&2
cargo xtask publish-all --profile local
echo "--- status: every layer unchanged, without flags" >&2
cargo xtask status --profile local
echo "--- published/local.json" >&2
cat published/local.json
