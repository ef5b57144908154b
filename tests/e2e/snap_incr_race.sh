# Incremental snapshots of a process that writes all the time: the written
# pages are re-protected only after the resume (dump_incr_settle.c: in a
# thread, finished after the reply; its lines end dump.log then), so the
# process writes pages that are still unprotected right after each snap. A
# page written then must not be taken as unchanged by the next snapshot (nor
# by a rollback). ct_churn's worker rewrites pages and remaps slots without
# pause; every snapshot, restored in place, must pass its byte-for-byte
# replay check. Twice: with the heap in 4 KiB pages, and in transparent huge
# pages (--thp: written and protected per 2 MiB until the kernel splits a
# page table).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

# race NAME [ct_churn options]
race() {
	local name=$1
	shift
	st=$WORK/$name.st
	# (the written pages of a rollback are protected again 50 ms after its
	# reply, so that the target surely writes some of them before)
	FORKPOINT_FAULT=rollback-settle-after-50-ms "$FP" run --detach --name "$name" -- "$T/ct_churn" "$st" --mib=32 "$@" >/dev/null || fail "$name: run"
	track_pid "$(session_field "$name" helper_pid)"
	wait_for 20 grep -q '^ready' "$st" || fail "$name: target not ready: $(cat "$st")"
	pid=$(session_field "$name" target_pid)
	track_pid "$pid"
	S=$FORKPOINT_HOME/sessions/$name/snapshots

	n=0 raced=0
	for i in $(seq 1 30); do
		snap_json "$name" "s$i" "$WORK/$name-s$i.json"
		n=$i
		if ((i > 1)); then
			[[ $(json_field "$WORK/$name-s$i.json" full) == False ]] || fail "$name: s$i is not incremental: $(cat "$WORK/$name-s$i.json")"
			[[ -n ${FP_DUMP_REPROTECT_STOPPED:-} ]] || wait_for 20 grep -q 'written meanwhile' "$S/s$i/dump.log" ||
				fail "$name: s$i: no check after the resume in its log: $(grep -E 're-protect|written' "$S/s$i/dump.log")"
			w=$(sed -n 's/.*: \([0-9][0-9]*\) written meanwhile (left unprotected).*/\1/p' "$S/s$i/dump.log")
			[[ -n $w || -n ${FP_DUMP_REPROTECT_STOPPED:-} ]] || fail "$name: s$i: no check after the resume in its log: $(grep -E 're-protect|written' "$S/s$i/dump.log")"
			((w > 0)) && raced=$((raced + 1))
		fi
		if ((i >= 8)) && { ((raced >= 3)) || [[ -n ${FP_DUMP_REPROTECT_STOPPED:-} ]]; }; then break; fi
	done
	((raced > 0)) || [[ -n ${FP_DUMP_REPROTECT_STOPPED:-} ]] || fail "$name: in $n snapshots the target never wrote a page between a resume and its re-protection"
	echo "$n snapshots, $raced with pages written between the resume and the re-protection"

	# Each snapshot in place, newest first (what changed since it is exactly what
	# the tracking says) then older ones: the target replays its rounds and
	# compares every byte.
	v=0
	for s in "s$n" "s$((n - 1))" s2 "s$n"; do
		restore_check "$name" "$s" "$st"
		v=$((v + 1))
		# and a snapshot right after, still incremental, from a racing target
		snap_json "$name" "a$v" "$WORK/$name-a$v.json"
	done
	# Those snapshots came right after rollbacks, whose written pages are
	# protected again only after the reply (rollback_rearm.c), while the target
	# kept writing: a page it wrote before its protection came back must be in
	# them. Each one, restored in place, must pass the replay check.
	for a in $(seq "$v" -1 1); do
		"$FP" restore "$name" "a$a" >"$WORK/r.out" 2>&1 || fail "$name: restore a$a: $(cat "$WORK/r.out")"
		c=$(grep -c '^verify ' "$st")
		kill -USR2 "$pid"
		wait_for 30 bash -c "(( \$(grep -c '^verify ' '$st') > $c ))" || fail "$name: no verification after restoring a$a"
		last=$(grep '^verify ' "$st" | tail -n 1)
		[[ $last == *" ok "* ]] || fail "$name: after restoring a$a (a snapshot taken right after a rollback): $last"
	done
	"$FP" stop "$name" >/dev/null
	echo "$name: ok"
}

race race
race race-thp --thp
