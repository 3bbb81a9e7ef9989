#!/bin/bash
# Fetch a Debian source package and build it with its own build system,
# recording compile_commands.json with bear: a real program, written by
# others, for rewire's tests. Prints the source tree's path.
#   scripts/third_party.sh bc
# Builds once into build/third_party/; needs deb-src (enabled here if
# missing, as root) and bear.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
pkg=$1
dest=$top/build/third_party
mkdir -p "$dest"
cd "$dest"
if [ -f "$pkg.done" ]; then
	cat "$pkg.done"
	exit 0
fi
log=$dest/$pkg.log
{
	command -v bear >/dev/null || apt-get install -y -qq bear
	if ! ls "$pkg"_*.dsc >/dev/null 2>&1; then
		if ! apt-get source --download-only -qq "$pkg" 2>/dev/null; then
			# deb-src is off on a fresh machine: turn it on for Debian's main archive.
			cat >/etc/apt/sources.list.d/rewire-deb-src.sources <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
			apt-get update -qq
			apt-get source --download-only -qq "$pkg"
		fi
	fi
	orig=$(ls "$pkg"_*.orig.tar.* | head -1)
	rm -rf "$pkg-src"
	mkdir "$pkg-src"
	tar xf "$orig" -C "$pkg-src" --strip-components=1
} >"$log" 2>&1 || { echo "third_party: cannot fetch $pkg (see $log)" >&2; exit 1; }
cd "$pkg-src"
case $pkg in
bc)
	# bc's own autotools build; the documentation needs texinfo: skip it.
	{ ./configure CFLAGS="-g -O2 -fno-ipa-ra" && bear -- make -C lib &&
		bear --append -- make -C bc; } >>"$log" 2>&1 ||
		{ echo "third_party: cannot build $pkg (see $log)" >&2; exit 1; }
	;;
nginx)
	# A pre-fork server: a master and its worker processes. Only the
	# modules that need no other library (no PCRE, zlib or OpenSSL).
	{ ./configure --with-cc-opt="-g -O2 -fno-ipa-ra" --without-http_rewrite_module \
		--without-http_gzip_module --without-pcre --without-http_upstream_zone_module &&
		bear -- make -j2; } >>"$log" 2>&1 ||
		{ echo "third_party: cannot build $pkg (see $log)" >&2; exit 1; }
	;;
*)
	echo "third_party: no recipe for $pkg" >&2
	exit 1
	;;
esac
cp -a "$dest/$pkg-src" "$dest/$pkg-pristine"
echo "$dest/$pkg-src" | tee "$dest/$pkg.done"
