#!/usr/bin/env bash
# `make setup`: installs what forkpoint needs to build, test and benchmark on
# Debian 12 (x86_64), and looks for a CRIU 4.x that really works on this
# kernel, for forkpoint's restore fallback and the benchmark baseline.
# Safe to run again: when everything is in place it only checks (well under a
# second, verdicts are cached) and changes nothing.
#
# A CRIU is kept only if `forkpoint doctor --probe` accepts it: version 4.x,
# `criu check`, and a dump and a restore of a test process holding a TCP
# socket (common/criu_probe.c), each step under a
# deadline after which CRIU and all it started are killed (4.1.1 passes its
# check but hangs in dump on kernels whose hardware breakpoints do not trap).
# Candidates, in order; the first that works is kept:
#   1. the system's `criu` (Debian 12's 3.17 is installed anyway, for `crit`);
#   2. the prefix an earlier run provisioned ($FORKPOINT_CRIU_PREFIX, default
#      /opt/forkpoint/criu);
#   3. Debian sid's criu, then Debian 13 (trixie)'s (trixie's 4.1.1 passed
#      the probe on kernel 6.18.44-fc-v1252 but cannot dump a TCP socket
#      there: "Can't get 1:16 opt: Operation not supported"; sid's 4.2.1
#      can, so it comes first): the package and its
#      libraries, down to libc, are fetched with `apt-get download` through a
#      private apt state directory (the system's apt configuration is never
#      touched), unpacked with dpkg -x into a staging prefix, and run through
#      that prefix's own dynamic loader. A staging prefix that works becomes
#      the prefix.
# No candidate working is not an error: setup says why, loudly, and
# forkpoint's own dump and restore work without CRIU. What was found is kept
# in $(dirname PREFIX)/criu-setup.txt, which `forkpoint doctor` shows.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${FORKPOINT_CRIU_PREFIX:-/opt/forkpoint/criu}
REPORT=$(dirname "$PREFIX")/criu-setup.txt
APT_STATE=${FORKPOINT_APT_STATE:-/var/cache/forkpoint/apt}
# Debian suites to fetch CRIU from when no installed one works; empty: try
# only what is installed.
SUITES=${FORKPOINT_CRIU_SUITES-sid trixie}
# protobuf-c: CRIU's messages; cffi + pytest: the Python binding; clang: the
# libFuzzer target; postgresql and nginx-light: real servers in the tests;
# buildah: forkpoint build.
PACKAGES=(build-essential pkg-config libzstd-dev libelf-dev libunwind-dev libbpf-dev liburing-dev zstd python3
	gnuplot-nox redis-server criu tmux vim less
	protobuf-c-compiler libprotobuf-c-dev python3-dev python3-cffi python3-pytest clang
	postgresql nginx-light buildah)
SYSTEM_SOURCES=/etc/apt/sources.list.d/debian.sources
FP=$ROOT/build/bin/forkpoint
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

# ---------------------------------------------------------------- CRIU candidates

REFUSED=() # "candidate: reason" lines for the report
CHOSEN_DESC=

# criu_works PATH LABEL: 0 when forkpoint's probe accepts PATH.
criu_works() {
	local out rc=0
	out=$("$FP" doctor --probe "$1" 2>&1) || rc=$?
	if ((rc == 0)); then
		CHOSEN_DESC="$2: $out"
		return 0
	fi
	REFUSED+=("$2: ${out:-forkpoint doctor --probe exited $rc}")
	say "criu: refused $2: ${out:-exit $rc}"
	return 1
}

# Prints the system's Debian source entry for the running release rewritten
# for suite $1 as a one-line sources.list entry: same URI and keyring.
debian_source_line() {
	local suite=$1 codename
	# shellcheck disable=SC1091
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[[ -n $codename && -r $SYSTEM_SOURCES ]] || return 1
	# deb822: stanzas split by blank lines, '#' lines are comments.
	awk -v want="$codename" -v suite="$suite" '
	function flush(   n, i, s, u, ok) {
		if (!done && f["uris"] != "") {
			n = split(f["suites"], s, /[ \t]+/)
			for (i = 1; i <= n; i++) if (s[i] == want) ok = 1
			if (f["types"] !~ /(^|[ \t])deb([ \t]|$)/ || tolower(f["enabled"]) == "no") ok = 0
			if (ok) {
				split(f["uris"], u, /[ \t]+/)
				printf "deb [%s] %s %s main\n", \
					(f["signed-by"] != "" ? "signed-by=" f["signed-by"] : ""), u[1], suite
				done = 1
			}
		}
		delete f
	}
	/^#/ { next }
	/^[ \t]*$/ { flush(); next }
	/^[ \t]/ { next }
	{ i = index($0, ":"); if (i) { k = tolower(substr($0, 1, i - 1)); v = substr($0, i + 1)
	  sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v); f[k] = v } }
	END { flush(); if (!done) exit 1 }
	' "$SYSTEM_SOURCES"
}

# apt against one suite alone, with its own lists, cache and an empty status
# file: the system's sources, pins, lists and dpkg state are neither read nor
# written, and every dependency down to libc comes from that suite.
suite_apt() {
	local suite=$1 tool=$2
	shift 2
	local d=$APT_STATE/$suite
	"$tool" -q -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts="$d/empty" \
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$d/empty" \
		-o Dir::State="$d/state" -o Dir::State::status="$d/state/status" \
		-o Dir::Cache="$d/cache" -o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}

# Checks that the prefix's loader resolves every library of its criu inside
# the prefix: one missing there would come from the system (through
# /etc/ld.so.cache) and mix two glibc generations.
libs_in_prefix() {
	local root=$1 ldso=$2 listing bad
	listing=$("$ldso" --library-path "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu" \
		--list "$root/usr/sbin/criu" 2>&1) || { echo "its loader cannot load criu: $listing"; return 1; }
	bad=$(awk -v root="$root/" '/not found/ { print; next } /=>/ { if (index($3, root) != 1) print }' <<<"$listing")
	[[ -z $bad ]] || { echo "libraries not in the prefix: $(tr '\n' ' ' <<<"$bad")"; return 1; }
}

write_wrapper() { # root ldso-relative suite version
	local root=$1 ldso_rel=$2
	mkdir -p "$root/bin"
	cat >"$root/bin/criu.tmp" <<EOF
#!/bin/sh
# CRIU $4 from Debian $3, run with the loader and libraries unpacked beside it
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

# stage_suite SUITE: downloads SUITE's criu with its dependencies, unpacks
# them into a staging prefix and prints its path; on failure prints why.
stage_suite() {
	local suite=$1 d=$APT_STATE/$1 line
	line=$(debian_source_line "$suite") ||
		{ echo "no Debian entry in $SYSTEM_SOURCES to derive $suite's archive from"; return 1; }
	mkdir -p "$d/empty" "$d/state/lists/partial" "$d/cache/archives/partial"
	: >"$d/state/status"
	printf '%s\n' "$line" >"$d/sources.list"
	apt_log
	suite_apt "$suite" apt-get update >>"$APT_LOG" 2>&1 ||
		{ echo "apt-get update of $suite failed (log: $APT_LOG)"; return 1; }
	local pkgs version
	version=$(suite_apt "$suite" apt-cache policy criu 2>/dev/null | sed -n 's/^ *Candidate: *//p')
	[[ -n $version && $version != "(none)" ]] || { echo "$suite has no criu package"; return 1; }
	pkgs=$(suite_apt "$suite" apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances criu 2>/dev/null | grep -v '^[ <]' | sort -u) || true
	grep -qx libc6 <<<"$pkgs" || { echo "cannot resolve criu's dependencies in $suite"; return 1; }
	local work stage
	work=$(mktemp -d /tmp/forkpoint-setup-debs.XXXXXX)
	CLEANUP+=("rm -rf '$work'")
	# shellcheck disable=SC2086
	(cd "$work" && suite_apt "$suite" apt-get download $pkgs) >>"$APT_LOG" 2>&1 ||
		{ echo "apt-get download from $suite failed (log: $APT_LOG)"; return 1; }
	stage=$PREFIX.stage-$suite.$$
	rm -rf "$stage"
	CLEANUP+=("rm -rf '$stage'")
	mkdir -p "$stage"
	local deb
	for deb in "$work"/*.deb; do
		dpkg -x "$deb" "$stage" || { echo "dpkg -x $(basename "$deb") failed"; return 1; }
	done
	local ldso_rel
	for ldso_rel in usr/lib64/ld-linux-x86-64.so.2 lib64/ld-linux-x86-64.so.2 \
		usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; do
		[[ -e $stage/$ldso_rel ]] && break
	done
	[[ -e $stage/$ldso_rel && -x $stage/usr/sbin/criu ]] ||
		{ echo "the unpacked packages have no loader or no usr/sbin/criu"; return 1; }
	libs_in_prefix "$stage" "$stage/$ldso_rel" || return 1
	write_wrapper "$stage" "$ldso_rel" "$suite" "$version"
	echo "$stage"
}

# An earlier setup wrote a trixie entry into the system's apt configuration;
# this one keeps its own apt state, so those files go.
forget_old_apt_entries() {
	local f
	for f in /etc/apt/sources.list.d/forkpoint-trixie.sources /etc/apt/preferences.d/forkpoint-trixie; do
		if [[ -f $f ]] && grep -q "forkpoint's scripts/setup.sh" "$f"; then
			rm -f "$f"
			say "removed $f (setup now keeps its apt state in $APT_STATE)"
		fi
	done
}

write_report() { # chosen-description
	mkdir -p "$(dirname "$REPORT")"
	{
		echo "# written by forkpoint's make setup, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r)"
		echo "chosen: $1"
		local r
		for r in "${REFUSED[@]}"; do echo "refused: $r"; done
	} >"$REPORT.tmp" && mv -f "$REPORT.tmp" "$REPORT"
}

chose() { # description
	write_report "$1"
	say "criu: using $1"
}

setup_criu() {
	make -s -C "$ROOT" build/bin/forkpoint >/dev/null || die "cannot build forkpoint (its doctor tests each CRIU)"
	forget_old_apt_entries
	local sys
	if sys=$(command -v criu) && criu_works "$sys" "system criu ($sys)"; then
		chose "$CHOSEN_DESC"
		return
	fi
	if [[ -e $PREFIX/bin/criu ]]; then
		if criu_works "$PREFIX/bin/criu" "provisioned $PREFIX"; then
			chose "$CHOSEN_DESC"
			return
		fi
		# Proven not to work here: out of the way, so that forkpoint does
		# not test it again after every boot.
		rm -rf "$PREFIX"
	fi
	local suite stage
	for suite in $SUITES; do
		say "criu: fetching Debian $suite's criu into a staging prefix"
		if ! stage=$(stage_suite "$suite"); then
			REFUSED+=("Debian $suite: $stage")
			say "criu: refused Debian $suite: $stage"
			continue
		fi
		if criu_works "$stage/bin/criu" "Debian $suite"; then
			mkdir -p "$(dirname "$PREFIX")"
			rm -rf "$PREFIX"
			mv "$stage" "$PREFIX"
			# The verdict was cached under the staging path; prove the final one.
			criu_works "$PREFIX/bin/criu" "Debian $suite in $PREFIX" ||
				die "CRIU from $suite worked in its staging prefix but not in $PREFIX"
			chose "$CHOSEN_DESC"
			return
		fi
		rm -rf "$stage"
	done
	write_report "none"
	{
		echo "setup: ======================================================================"
		echo "setup: NO WORKING CRIU on this machine. forkpoint's own dump and restore work;"
		echo "setup: its CRIU fallback (restore --engine criu) refuses, and tests that need"
		echo "setup: CRIU are skipped. Why each candidate was refused:"
		local r
		for r in "${REFUSED[@]}"; do echo "setup:   - $r"; done
		echo "setup: (kept in $REPORT; \`forkpoint doctor\` shows it)"
		echo "setup: ======================================================================"
	} >&2
}

install_packages
setup_criu
[[ -z $APT_LOG ]] || rm -f "$APT_LOG"
say "done"
