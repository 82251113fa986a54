#!/bin/sh
# Install what building and testing cunicorn need ("make deps").
#
#   Debian/Ubuntu  installs the missing packages with apt-get (sudo when not
#                  root); does nothing, offline, when all are installed
#   FreeBSD        prints the pkg install command for the missing packages
#   Alpine         prints the apk add command for the missing packages
#
# Exit status 0 when everything is present (or was installed), 1 otherwise.
# The integration tests use the distribution's python3 with its Flask,
# Django and PasteDeploy packages, never pip.

set -eu

DEBIAN_PKGS="g++ make python3-dev python3-flask python3-django python3-pastedeploy wrk bmake mandoc openssl curl valgrind"
# FreeBSD has c++ (clang), make (bmake) and mandoc in base; Django ports are
# versioned (www/py-django42).
FREEBSD_PKGS="python3 python311 py311-flask py311-django42 py311-pastedeploy wrk curl"
ALPINE_PKGS="g++ make python3-dev py3-flask py3-django py3-pastedeploy wrk bmake mandoc openssl curl valgrind"

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

if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
	for p in $DEBIAN_PKGS; do
		# "install ok installed" only: a removed package leaves "deinstall".
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
			missing="$missing $p"
		fi
	done
	if [ -z "$missing" ]; then
		echo "install-deps: all present: $DEBIAN_PKGS"
		exit 0
	fi
	echo "install-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	if ! as_root apt-get install -y --no-install-recommends $missing; then
		# Package lists may be missing or stale on a fresh machine.
		as_root apt-get update
		# shellcheck disable=SC2086
		as_root apt-get install -y --no-install-recommends $missing
	fi
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
echo "  Python 3 with headers, Flask, Django, PasteDeploy, wrk, bmake, mandoc, openssl, curl, valgrind" >&2
exit 1
