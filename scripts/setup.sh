#!/usr/bin/env bash
# `make setup`: installs what forkpoint needs to build, test and benchmark on
# Debian 12 (x86_64), and a CRIU 4.x that passes `criu check` on this kernel.
# Safe to run again: when everything is in place it only checks (well under a
# second) and changes nothing.
#
# Debian 12's criu (3.17) cannot initialise on recent kernels; it is installed
# only for its `crit` image decoder. A working CRIU comes from, in order:
#   1. the system's criu, if it is 4.x and passes `criu check`;
#   2. $FORKPOINT_CRIU_PREFIX (default /opt/forkpoint/criu), provisioned here
#      from Debian 13 (trixie): criu and the libraries it needs, down to libc,
#      are unpacked (dpkg -x) into the prefix, never installed into the
#      system, and $PREFIX/bin/criu runs that criu with the prefix's own
#      dynamic loader. The trixie archive is added to apt pinned at priority
#      1, so nothing on the system is ever upgraded from it.
set -euo pipefail

PREFIX=${FORKPOINT_CRIU_PREFIX:-/opt/forkpoint/criu}
PACKAGES=(build-essential pkg-config libzstd-dev libelf-dev libunwind-dev zstd python3
	gnuplot-nox redis-server criu)
SYSTEM_SOURCES=/etc/apt/sources.list.d/debian.sources
TRIXIE_SOURCES=/etc/apt/sources.list.d/forkpoint-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/forkpoint-trixie
CHECK_TIMEOUT=60
export DEBIAN_FRONTEND=noninteractive

say() { echo "setup: $*"; }
die() {
	echo "setup: FAILED: $1" >&2
	shift
	local line
	for line in "$@"; do echo "  $line" >&2; done
	exit 1
}

CLEANUP=()
SMOKE_PID=
APT_LOG= # apt's chatter, kept only when something fails
cleanup() {
	local c
	for c in "${CLEANUP[@]}"; do eval "$c" || true; done
}
trap cleanup EXIT

apt_log() { # sets APT_LOG, creating the file on first use
	[[ -n $APT_LOG ]] || APT_LOG=$(mktemp /tmp/forkpoint-setup-apt.XXXXXX)
}

[[ $EUID == 0 ]] || die "setup must run as root (it uses apt-get and writes $PREFIX)" \
	"fix: run it as root, e.g. \`sudo make setup\`"
[[ $(uname -m) == x86_64 ]] || die "forkpoint supports x86_64 only (this machine is $(uname -m))"

# ---------------------------------------------------------------- packages

missing_packages() {
	# dpkg-query prints nothing for packages it never heard of, so anything
	# not reported as installed is missing.
	local installed
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null |
		awk '$2 == "installed" { print $1 }') || true
	local p
	for p in "${PACKAGES[@]}"; do
		grep -qx -- "$p" <<<"$installed" || echo "$p"
	done
}

install_packages() {
	local missing
	missing=$(missing_packages | tr '\n' ' ')
	if [[ -z ${missing// /} ]]; then
		say "packages: all present"
		return
	fi
	say "packages: installing ${missing}"
	apt_log
	apt-get update -q >>"$APT_LOG" 2>&1 ||
		die "apt-get update failed (log: $APT_LOG)" \
			"fix: check that Debian's archive is reachable and /etc/apt/sources.list.d/ is valid"
	# Installing must not start services (redis-server would start one).
	local made_policy=0
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		made_policy=1
		CLEANUP+=("rm -f /usr/sbin/policy-rc.d")
	fi
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >>"$APT_LOG" 2>&1 ||
		die "apt-get install $missing failed (log: $APT_LOG)" \
			"fix: run \`apt-get install $missing\` by hand to see why"
	[[ $made_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
	# With systemd, policy-rc.d stops the start but not the enable.
	if [[ $missing == *redis-server* && -d /run/systemd/system ]]; then
		systemctl disable --now redis-server >/dev/null 2>&1 || true
	fi
	local still
	still=$(missing_packages | tr '\n' ' ')
	[[ -z ${still// /} ]] || die "packages still missing after apt-get install: $still" \
		"fix: run \`apt-get install $still\` by hand"
	say "packages: installed"
}

# ---------------------------------------------------------------- CRIU checks

criu_major() { # prints the major version of criu binary $1, or nothing
	timeout -k 5 20 "$1" --version 2>/dev/null </dev/null | sed -n 's/^Version: *\([0-9][0-9]*\)\..*/\1/p' | head -n 1
}

criu_version() {
	timeout -k 5 20 "$1" --version 2>/dev/null </dev/null | sed -n 's/^Version: *\([0-9.]*\).*/\1/p' | head -n 1
}

# criu_good PATH: 0 when PATH is CRIU >= 4 and `criu check` passes; on
# failure CRIU_WHY says why.
CRIU_WHY=
criu_good() {
	local c=$1 major out
	if [[ ! -e $c ]]; then
		CRIU_WHY="$c does not exist"
		return 1
	elif [[ ! -x $c ]]; then
		CRIU_WHY="$c is not executable"
		return 1
	fi
	major=$(criu_major "$c")
	if [[ -z $major ]]; then
		CRIU_WHY="$c --version printed no version"
		return 1
	fi
	if ((major < 4)); then
		CRIU_WHY="$c is version $(criu_version "$c"), need 4.x"
		return 1
	fi
	if ! out=$(timeout -k 5 "$CHECK_TIMEOUT" "$c" check </dev/null 2>&1); then
		CRIU_WHY="\`$c check\` failed: $(grep -m1 '^Error' <<<"$out" || head -n 1 <<<"$out")"
		return 1
	fi
	return 0
}

# ---------------------------------------------------------------- provisioning

# Prints the system's Debian source entry for the running release, rewritten
# for trixie: same URIs, Signed-By and components, Suites: trixie.
trixie_sources_text() {
	local codename
	# shellcheck disable=SC1091
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[[ -n $codename ]] || die "cannot tell the Debian release from /etc/os-release"
	[[ -r $SYSTEM_SOURCES ]] || die "$SYSTEM_SOURCES not found: cannot derive the trixie archive from it" \
		"fix: provide a deb822 $SYSTEM_SOURCES for Debian $codename, or set FORKPOINT_CRIU to a CRIU 4.x"
	# deb822: stanzas split by blank lines, continuation lines start with a
	# space (a Signed-By can be an inline key block), '#' lines are comments.
	awk -v want="$codename" '
	function flush(   ok, n, i, s) {
		if (cur != "" && !done) {
			n = split(f["suites"], s, /[ \t]+/)
			ok = 0
			for (i = 1; i <= n; i++) if (s[i] == want) ok = 1
			if (f["types"] !~ /(^|[ \t])deb([ \t]|$)/) ok = 0
			if (tolower(f["enabled"]) == "no") ok = 0
			if (ok && f["uris"] != "") {
				print "Types: deb"
				print "URIs: " f["uris"]
				print "Suites: trixie"
				print "Components: " (f["components"] != "" ? f["components"] : "main")
				if (f["signed-by"] != "") print "Signed-By: " f["signed-by"]
				done = 1
			}
		}
		delete f; cur = ""
	}
	/^#/ { next }
	/^[ \t]*$/ { flush(); next }
	/^[ \t]/ { if (cur != "") f[cur] = f[cur] "\n" $0; next }
	{
		i = index($0, ":"); if (!i) next
		cur = tolower(substr($0, 1, i - 1))
		f[cur] = substr($0, i + 1)
		sub(/^[ \t]+/, "", f[cur]); sub(/[ \t]+$/, "", f[cur])
	}
	END { flush(); if (!done) exit 1 }
	' "$SYSTEM_SOURCES" ||
		die "no entry for suite '$codename' in $SYSTEM_SOURCES: cannot derive the trixie archive" \
			"fix: set FORKPOINT_CRIU to a CRIU 4.x binary that passes \`criu check\`"
}

write_if_changed() { # path content
	if [[ ! -f $1 || $(cat "$1") != "$2" ]]; then
		printf '%s\n' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
	fi
}

# apt run against the trixie entry alone: the system's other sources, pins
# and package cache are left out, so candidates are trixie's versions and the
# system lists are neither refreshed nor cleaned.
trixie_apt() {
	local tool=$1
	shift
	"$tool" -q -o Dir::Etc::sourcelist="$TRIXIE_SOURCES" -o Dir::Etc::sourceparts=- \
		-o Dir::Etc::preferences=/dev/null -o Dir::Etc::preferencesparts=- \
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
		-o APT::Get::List-Cleanup=0 "$@"
}

# Checks that the prefix's loader resolves every library of its criu inside
# the prefix: a library missing there would silently come from the system
# (through /etc/ld.so.cache) and mix two glibc generations.
check_libs_in_prefix() {
	local root=$1 ldso=$2 libpath=$3 listing bad
	listing=$("$ldso" --library-path "$libpath" --list "$root/usr/sbin/criu" 2>&1) ||
		die "the trixie loader cannot load criu" "$listing"
	bad=$(awk -v root="$root/" '
		/not found/ { print; next }
		/=>/ { if (index($3, root) != 1) print }' <<<"$listing")
	[[ -z $bad ]] || die "criu from trixie needs libraries that were not unpacked into the prefix:" \
		"$bad" "fix: add their packages to the download list in scripts/setup.sh"
}

write_wrapper() { # root ldso-relative
	local root=$1 ldso_rel=$2
	mkdir -p "$root/bin"
	cat >"$root/bin/criu.tmp" <<EOF
#!/bin/sh
# CRIU from Debian 13, run with the loader and libraries unpacked beside it
# (written by forkpoint's scripts/setup.sh). The prefix is found from this
# script's own location, so the tree can be moved.
self=\$(readlink -f -- "\$0") || exit 127
P=\${self%/bin/*}
exec "\$P/$ldso_rel" --argv0 "\$0" \\
	--library-path "\$P/usr/lib/x86_64-linux-gnu:\$P/lib/x86_64-linux-gnu" \\
	"\$P/usr/sbin/criu" "\$@"
EOF
	chmod 0755 "$root/bin/criu.tmp"
	mv -f "$root/bin/criu.tmp" "$root/bin/criu"
}

# A real dump and restore of a trivial process, then `crit decode` of an image.
smoke_test() {
	local criu=$1 dir pid i
	dir=$(mktemp -d /tmp/forkpoint-setup-smoke.XXXXXX)
	CLEANUP+=("rm -rf '$dir'")
	# Our own child, so that bash reaps it as soon as the dump kills it (the
	# pid must be free for restore); disowned, so bash does not announce that
	# death. setsid gives it a session of its own. No job control here, so the
	# child is no group leader and setsid does not fork: $! is the target.
	setsid sleep 1000 </dev/null >/dev/null 2>&1 &
	pid=$!
	disown "$pid"
	SMOKE_PID=$pid
	# shellcheck disable=SC2016 # expanded when the cleanup runs
	CLEANUP+=('[[ -n $SMOKE_PID ]] && kill -9 "$SMOKE_PID" 2>/dev/null')
	for ((i = 0; i < 500; i++)); do
		[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */sleep ]] && break
		sleep 0.01
	done
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */sleep ]] ||
		die "smoke test: could not start a target process"
	mkdir "$dir/img"
	timeout -k 5 60 "$criu" dump -t "$pid" -D "$dir/img" -o dump.log </dev/null >/dev/null 2>&1 ||
		die "smoke test: \`criu dump\` of a sleeping process failed" \
			"$(grep -m3 '^Error' "$dir/img/dump.log" 2>/dev/null)"
	for ((i = 0; i < 1000; i++)); do
		[[ -e /proc/$pid ]] || break
		sleep 0.01
	done
	timeout -k 5 60 "$criu" restore -d -D "$dir/img" -o restore.log </dev/null >/dev/null 2>&1 ||
		die "smoke test: \`criu restore\` failed" \
			"$(grep -m3 '^Error' "$dir/img/restore.log" 2>/dev/null)"
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */sleep ]] ||
		die "smoke test: criu restore returned 0 but process $pid is not running"
	kill -9 "$pid" 2>/dev/null || true
	# shellcheck disable=SC2034 # read by cleanup
	SMOKE_PID=
	if command -v crit >/dev/null; then
		crit decode -i "$dir/img/inventory.img" >/dev/null 2>&1 ||
			die "smoke test: \`crit decode\` cannot read an image written by $criu" \
				"fix: reinstall Debian's criu package (it provides crit)"
	fi
}

provision_criu() {
	say "criu: provisioning CRIU 4.x from Debian 13 (trixie) into $PREFIX"
	local text
	text=$(trixie_sources_text)
	write_if_changed "$TRIXIE_SOURCES" "# Added by forkpoint's scripts/setup.sh: CRIU 4.x is taken from here.
# Pinned to priority 1 in $TRIXIE_PIN: nothing is installed or upgraded from it.
$text"
	write_if_changed "$TRIXIE_PIN" "# Added by forkpoint's scripts/setup.sh: never install or upgrade from trixie.
Package: *
Pin: release n=trixie
Pin-Priority: 1"
	apt_log
	trixie_apt apt-get update >>"$APT_LOG" 2>&1 ||
		die "apt-get update of the trixie archive failed (log: $APT_LOG)" \
			"fix: check that Debian's archive is reachable; see $TRIXIE_SOURCES"

	# criu plus everything it depends on, down to libc (dependencies of the
	# trixie versions: the system's are too old for it).
	local pkgs
	pkgs=$(trixie_apt apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances criu 2>/dev/null | grep -v '^[ <]' | sort -u) ||
		true
	if ! grep -qx criu <<<"$pkgs" || ! grep -qx libc6 <<<"$pkgs"; then
		die "cannot resolve criu's dependencies in trixie" \
			"fix: run \`apt-cache policy criu\` and check $TRIXIE_SOURCES"
	fi
	local pkg_line=${pkgs//$'\n'/ }

	local work stage old
	work=$(mktemp -d /tmp/forkpoint-setup-debs.XXXXXX)
	CLEANUP+=("rm -rf '$work'")
	# apt fetches as _apt; let it write here.
	id _apt >/dev/null 2>&1 && chown _apt "$work"
	# shellcheck disable=SC2086
	(cd "$work" && trixie_apt apt-get download $pkgs) >>"$APT_LOG" 2>&1 ||
		die "apt-get download of $pkg_line from trixie failed (log: $APT_LOG)"
	local debs=("$work"/*.deb)
	say "criu: unpacking ${#debs[@]} packages: $pkg_line"

	# Build the new tree beside the old one, test it, then swap: a failed run
	# leaves a working prefix alone.
	mkdir -p "$(dirname "$PREFIX")"
	stage=$PREFIX.new.$$
	rm -rf "$stage"
	CLEANUP+=("rm -rf '$stage'")
	mkdir -p "$stage"
	local deb
	for deb in "${debs[@]}"; do
		dpkg -x "$deb" "$stage" || die "dpkg -x $deb failed"
	done
	local ldso_rel
	for ldso_rel in usr/lib64/ld-linux-x86-64.so.2 lib64/ld-linux-x86-64.so.2 \
		usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; do
		[[ -e $stage/$ldso_rel ]] && break
	done
	[[ -e $stage/$ldso_rel && -x $stage/usr/sbin/criu ]] ||
		die "the unpacked trixie packages have no loader or no usr/sbin/criu"
	check_libs_in_prefix "$stage" "$stage/$ldso_rel" \
		"$stage/usr/lib/x86_64-linux-gnu:$stage/lib/x86_64-linux-gnu"
	write_wrapper "$stage" "$ldso_rel"
	criu_good "$stage/bin/criu" || die "the provisioned CRIU does not work: $CRIU_WHY"

	old=$PREFIX.old.$$
	[[ -e $PREFIX ]] && mv "$PREFIX" "$old"
	mv "$stage" "$PREFIX"
	rm -rf "$old"
	smoke_test "$PREFIX/bin/criu"
	say "criu: $PREFIX/bin/criu $(criu_version "$PREFIX/bin/criu") passes criu check, dump and restore"
}

setup_criu() {
	local sys
	if sys=$(command -v criu) && criu_good "$sys"; then
		say "criu: $sys $(criu_version "$sys") passes criu check"
		return
	fi
	local sys_why=${CRIU_WHY:-no criu on PATH}
	if criu_good "$PREFIX/bin/criu"; then
		say "criu: $PREFIX/bin/criu $(criu_version "$PREFIX/bin/criu") passes criu check"
		return
	fi
	say "criu: system criu not usable ($sys_why); $CRIU_WHY"
	provision_criu
}

install_packages
setup_criu
[[ -z $APT_LOG ]] || rm -f "$APT_LOG"
say "done"
