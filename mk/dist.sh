#!/bin/sh
# mk/dist.sh — the source rock of the release: the committed tree (git archive) as
# lua-sip-publish-VERSION.tar.gz and lua-sip-publish-VERSION-1.src.rock in build/dist/, which
# `luarocks install build/dist/lua-sip-publish-VERSION-1.src.rock` builds with no network.
set -eu
cd "$(dirname "$0")/.."
spec=$(ls rockspec/lua-sip-publish-[0-9]*.rockspec | sort -V | tail -n 1)
rel=$(basename "$spec" .rockspec)          # lua-sip-publish-0.1.0-1
ver=${rel#lua-sip-publish-}; ver=${ver%-*}  # 0.1.0
out=build/dist
mkdir -p "$out"
git archive --format=tar.gz --prefix="lua-sip-publish-$ver/" -o "$out/lua-sip-publish-$ver.tar.gz" HEAD
# luarocks pack fetches the source named in the rockspec: point it at the archive just made
# (the rock keeps its own copy; installing it fetches nothing).
tmp=$(mktemp -d)
sed "s|url = \"https://example.invalid/releases/lua-sip-publish-$ver.tar.gz\"|url = \"file://$PWD/$out/lua-sip-publish-$ver.tar.gz\"|" "$spec" > "$tmp/$rel.rockspec"
(cd "$tmp" && luarocks pack "$tmp/$rel.rockspec" >/dev/null)
mv "$tmp/$rel.src.rock" "$out/"
rm -rf "$tmp"
echo "$out/$rel.src.rock"
