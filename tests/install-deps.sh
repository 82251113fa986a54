#!/bin/sh
# Install what building and testing cunicorn need ("make deps").
#
#   Debian/Ubuntu  installs the missing packages with apt-get (sudo when not
#                  root), and unpacks Debian's OpenRC packages (without
#                  installing them) for the init.d script's test; does
#                  nothing, offline, when all are in place
#   FreeBSD        prints the pkg install command for the missing packages
#   Alpine         prints the apk add command for the missing packages
#
# Exit status 0 when everything is present (or was installed), 1 otherwise.
# The integration tests use the distribution's python3 with its Flask,
# Django and PasteDeploy packages, never pip, and install nothing: a tool
# missing there is a skipped test, so this list is every tool they run
# (shellcheck; systemd-analyze and systemd-socket-activate; man; unshare,
# chroot, dpkg-deb and start-stop-daemon for OpenRC).
#
# OpenRC's files go to $CUNICORN_TEST_DEPS/openrc (default
# /var/cache/cunicorn-tests/openrc), where test_packaging.py looks.

set -eu

DEBIAN_PKGS="g++ make python3-dev python3-pyflakes python3-flask python3-django python3-pastedeploy python3-gevent wrk bmake mandoc openssl curl valgrind shellcheck systemd man-db util-linux coreutils dpkg"
OPENRC_DEBS="openrc librc1 libeinfo1 insserv"
TEST_DEPS=${CUNICORN_TEST_DEPS:-/var/cache/cunicorn-tests}
# FreeBSD has c++ (clang), make (bmake) and mandoc in base; Django ports are
# versioned (www/py-django42).
FREEBSD_PKGS="python3 python311 py311-pyflakes py311-flask py311-django42 py311-pastedeploy py311-gevent wrk curl"
ALPINE_PKGS="g++ make python3-dev py3-pyflakes py3-flask py3-django py3-pastedeploy py3-gevent wrk bmake mandoc openssl curl valgrind"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "install-deps: need root (or sudo) for: $*" >&2
		return 1
	fi
}

missing=""

# apt-get with the package lists refreshed once if it fails: they may be
# missing or stale on a fresh machine.
apt_get() {
	if ! as_root apt-get "$@"; then
		as_root apt-get update
		as_root apt-get "$@"
	fi
}

# Debian's OpenRC, unpacked into $TEST_DEPS/openrc (nothing installed):
# the test runs the init.d script with it in a private mount namespace.
unpack_openrc() {
	dest=$TEST_DEPS/openrc
	if [ -x "$dest/sbin/openrc-run" ] || [ -x "$dest/usr/sbin/openrc-run" ]; then
		echo "install-deps: OpenRC already unpacked in $dest"
		return 0
	fi
	echo "install-deps: unpacking $OPENRC_DEBS into $dest"
	as_root rm -rf "$TEST_DEPS/debs" "$dest.new"
	as_root mkdir -p "$TEST_DEPS/debs" "$dest.new"
	# shellcheck disable=SC2086
	(cd "$TEST_DEPS/debs" && apt_get download $OPENRC_DEBS)
	for deb in "$TEST_DEPS"/debs/*.deb; do
		as_root dpkg-deb -x "$deb" "$dest.new"
	done
	as_root rm -rf "$dest"
	as_root mv "$dest.new" "$dest"
}

if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
	for p in $DEBIAN_PKGS; do
		# "install ok installed" only: a removed package leaves "deinstall".
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
			missing="$missing $p"
		fi
	done
	if [ -z "$missing" ]; then
		echo "install-deps: all present: $DEBIAN_PKGS"
	else
		echo "install-deps: installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		# shellcheck disable=SC2086
		apt_get install -y --no-install-recommends $missing
	fi
	unpack_openrc
	exit 0
fi

case "$(uname -s)" in
FreeBSD)
	for p in $FREEBSD_PKGS; do
		pkg info -e "$p" 2>/dev/null || missing="$missing $p"
	done
	if [ -z "$missing" ]; then
		echo "install-deps: all present: $FREEBSD_PKGS"
		exit 0
	fi
	echo "install-deps: run as root:"
	echo "  pkg install -y$missing"
	exit 1
	;;
esac

if [ -f /etc/alpine-release ] || command -v apk >/dev/null 2>&1; then
	for p in $ALPINE_PKGS; do
		apk info -e "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	if [ -z "$missing" ]; then
		echo "install-deps: all present: $ALPINE_PKGS"
		exit 0
	fi
	echo "install-deps: run as root:"
	echo "  apk add$missing"
	exit 1
fi

echo "install-deps: unknown system $(uname -s); install: a C++17 compiler, make," >&2
echo "  Python 3 with headers, Flask, Django, PasteDeploy, wrk, bmake, mandoc, openssl, curl, valgrind," >&2
echo "  shellcheck" >&2
exit 1
