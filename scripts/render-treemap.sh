#!/usr/bin/env bash
# Renders a `cargo xtask size` treemap SVG to PNG with headless Chromium, to look at it as
# a reader would: scripts/render-treemap.sh dist/pandas/pandas-py313-x86_64.size.svg [out.png]
set -euo pipefail
svg=${1:?usage: render-treemap.sh FILE.svg [OUT.png]}
png=${2:-${svg%.svg}.png}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "render-treemap.sh: no chromium on PATH: install it (apt-get install -y chromium)" >&2; exit 1; }
# The SVG's own size is the window: read width and height from its root element.
read -r w h < <(sed -n 's/^<svg[^>]* width="\([0-9.]*\)" height="\([0-9.]*\)".*/\1 \2/p' "$svg" | head -1)
[ -n "${w:-}" ] || { echo "render-treemap.sh: $svg has no width/height on its <svg> element" >&2; exit 1; }
timeout 60 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --screenshot="$(realpath -m "$png")" --window-size="${w%.*},${h%.*}" "file://$(realpath "$svg")" 2>/dev/null
echo "$png"
