#!/usr/bin/env bash
# Fetches the OHIF Viewer v3 (the built dist/ of npm's @ohif/app) into third_party/ohif/dist,
# which git and the build ignore; the server serves it at /ohif/ (rest/h_ohif.c, docs/ohif.md).
# usage: scripts/ohif.sh [dest-folder]   (default: third_party/ohif); quick when up to date.
#
# The npm build assumes it is served at "/": webpack's public path is the constant "/" in
# every bundle that loads chunks, workers or wasm files. That constant is changed here to
# "/ohif/", as are the absolute url(/...) of the stylesheets and the icons of manifest.json
# (the only edits to the package); the server rewrites index.html's absolute links
# as it serves it and generates app-config.js (router base name, data source, no tour).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=3.12.10
SHA1=3ab824dd080b3765e7b0b7f7c33b22c6d826047f  # npm view @ohif/app@3.12.10 dist.shasum
PREFIX=/ohif/
DEST="${1:-$ROOT/third_party/ohif}"
STAMP="@ohif/app@$VERSION publicPath=$PREFIX css+manifest"
if [ -f "$DEST/dist/.minipacs-ohif" ] && [ "$(cat "$DEST/dist/.minipacs-ohif")" = "$STAMP" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "ohif.sh: npm is needed (scripts/deps.sh installs it)" >&2; exit 1; }
mkdir -p "$DEST"
tmp="$(mktemp -d "$DEST/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "ohif: fetching @ohif/app@$VERSION with npm pack"
(cd "$tmp" && npm pack --silent "@ohif/app@$VERSION" >/dev/null)
echo "$SHA1  $tmp/ohif-app-$VERSION.tgz" | sha1sum -c --quiet
tar -xzf "$tmp/ohif-app-$VERSION.tgz" -C "$tmp" package/dist
dist="$tmp/package/dist"
n=0
for f in "$dist"/*.js; do
  if grep -q '__webpack_require__.p = "/";' "$f"; then
    sed -i "s#__webpack_require__.p = \"/\";#__webpack_require__.p = \"$PREFIX\";#" "$f"
    n=$((n + 1))
  fi
done
# Absolute links in the stylesheets (fonts) and the web manifest (icons).
sed -i "s#url(/#url($PREFIX#g" "$dist"/*.css
sed -i "s#\"/assets/#\"${PREFIX}assets/#g" "$dist/manifest.json"
if [ "$n" -lt 1 ] || ! grep -q "__webpack_require__.p = \"$PREFIX\";" "$dist"/app.bundle.*.js; then
  echo "ohif.sh: webpack public path not found in @ohif/app@$VERSION's bundles" >&2
  exit 1
fi
echo "$STAMP" > "$dist/.minipacs-ohif"
rm -rf "$DEST/dist"
mv "$dist" "$DEST/dist"
echo "ohif: $DEST/dist ready ($n bundles patched for $PREFIX)"
