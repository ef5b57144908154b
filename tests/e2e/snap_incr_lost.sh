# Write tracking lost on purpose: the session's process runs exec between
# two snapshots. The next snapshot is full and says why (snap --json and
# the dump log); the one after is incremental again, and restores.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/grow.st
fifo=$WORK/go
mkfifo "$fifo"
# a shell waits (in open of the fifo), then becomes ct_grow
"$FP" run --detach --name ex -- /bin/sh -c "read x <'$fifo'; exec '$T/ct_grow' '$st' --mib=8 --write-pages=4 --quiet-stdio" \
	>/dev/null || fail "run"
track_pid "$(session_field ex helper_pid)"
pid=$(session_field ex target_pid)
track_pid "$pid"
wait_for 10 test -e "/proc/$pid" || fail "no shell"
S=$FORKPOINT_HOME/sessions/ex/snapshots

snap_json ex e1 "$WORK/e1.json"
snap_json ex e2 "$WORK/e2.json"
[[ $(json_field "$WORK/e1.json" full) == True ]] || fail "e1 is not full"
[[ $(json_field "$WORK/e2.json" full) == False ]] || fail "e2 is not incremental: $(cat "$WORK/e2.json")"

echo go >"$fifo"
wait_for 20 grep -q '^ready ' "$st" || fail "the shell did not exec ct_grow: $(cat "$st" 2>/dev/null)"
snap_json ex e3 "$WORK/e3.json"
[[ $(json_field "$WORK/e3.json" full) == True ]] || fail "the snapshot after exec is not full: $(cat "$WORK/e3.json")"
why=$(json_field "$WORK/e3.json" why)
[[ $why == *exec* ]] || fail "the full snapshot after exec says: '$why'"
grep -q "full: .*exec" "$S/e3/dump.log" || fail "the dump log does not say why e3 is full"
read -r pr pa < <(pagemap_pages "$S/e3")
((pa == 0 && pr >= 2048)) || fail "e3's pagemap: $pr present, $pa parent"
[[ ! -e $S/e3/parent ]] || fail "the full e3 has a parent link"

ct_verify "$st" "$pid" >/dev/null || fail "verification 1"
snap_json ex e4 "$WORK/e4.json"
[[ $(json_field "$WORK/e4.json" full) == False ]] || fail "tracking did not resume after exec: $(cat "$WORK/e4.json")"
read -r pr pa < <(pagemap_pages "$S/e4")
((pr * 10 < pa)) || fail "e4 holds $pr pages, $pa in its parent"

"$FP" restore ex e4 >/dev/null || fail "restore e4"
pid=$(session_field ex target_pid)
track_pid "$pid"
line=$(ct_verify "$st" "$pid") || fail "after restoring e4: $line"
[[ $line == "verify 2 ok"* ]] || fail "restored e4 answered '$line'"
"$FP" stop --kill ex
echo "e3: $why"

# A killed session helper takes the tracking with it (it held the only
# userfaultfd): the kernel drops every write protection, and the process
# runs on unharmed. (A session without its helper takes no more snapshots.)
st2=$WORK/k.st
"$FP" run --detach --name kh -- "$T/ct_grow" "$st2" --mib=8 --write-pages=4 --quiet-stdio >/dev/null || fail "run kh"
hpid=$(session_field kh helper_pid)
track_pid "$hpid"
wait_for 20 grep -q '^ready ' "$st2" || fail "kh not ready"
kpid=$(session_field kh target_pid)
track_pid "$kpid"
snap_json kh k1 "$WORK/k1.json"
snap_json kh k2 "$WORK/k2.json"
grep -qw uw "/proc/$kpid/smaps" || fail "no write tracking on the session's process after two snapshots"
kill -9 "$hpid"
wait_for 10 bash -c "! grep -qw uw /proc/$kpid/smaps" || fail "write protection left on $kpid after its helper died"
line=$(ct_verify "$st2" "$kpid") || fail "the process of a killed helper: $line"
kill -9 "$kpid"
echo ok
