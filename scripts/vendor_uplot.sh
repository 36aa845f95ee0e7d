#!/usr/bin/env bash
# Refresh the dashboard's committed charting library from npm (run by hand when upgrading it):
# router/dashboard/static/vendor/uPlot.{iife.min.js,min.css} and its licence.
set -euo pipefail
VERSION="${1:-1.6.32}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/router/dashboard/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack "uplot@$VERSION" >/dev/null && tar xzf "uplot-$VERSION.tgz")
cp "$WORK/package/dist/uPlot.iife.min.js" "$WORK/package/dist/uPlot.min.css" "$DEST/"
cp "$WORK/package/LICENSE" "$DEST/uPlot.LICENSE"
echo "uPlot $VERSION → $DEST"
