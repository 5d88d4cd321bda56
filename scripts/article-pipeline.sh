#!/usr/bin/env bash
# The article's build pipeline, unchanged in substance: the baseline that
# `cargo xtask bench` compares against, kept here so a fork can rerun the comparison.
# It builds one layer zip from a requirements.txt:
#   docker run IMAGE pip install -r requirements.txt --no-deps --ignore-installed -t python
#   rm -rf python/*.dist-info python/__pycache__
#   zip -r NAME python
# Usage: article-pipeline.sh IMAGE REQUIREMENTS_DIR OUT_ZIP
# Only additions: pip's CA bundle (PIP_CERT) is passed into the container when set,
# so the baseline works behind the same TLS setup as the tool under test.
set -euo pipefail
image=$1 src=$(cd "$2" && pwd) out=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/requirements.txt" "$work/"
ca=()
if [[ -n ${PIP_CERT:-} && -f $PIP_CERT ]]; then
  ca=(-v "$PIP_CERT:/etc/ssl/certs/host-ca.crt:ro" -e PIP_CERT=/etc/ssl/certs/host-ca.crt)
fi
cd "$work"
mkdir -p python
docker run --rm "${ca[@]}" -v "$work":/foo -w /foo "$image" \
  pip install -q -r requirements.txt --no-deps --ignore-installed -t python
rm -rf python/*.dist-info python/__pycache__
rm -f "$out"
zip -q -r "$out" python
