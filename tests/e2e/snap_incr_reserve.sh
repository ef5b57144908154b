# An incremental snapshot's page store written over the file that the
# helper filled with zeros after the snapshot before (its reserve,
# helper/dump/dump_incr_reserve.c). ct_grow rewrites 200 heap pages at each
# verification and maps nothing, so each store is the one written beside
# the pre-copy: s3 writes fewer pages than its reserve holds (the zeros
# after them must be cut off), s4 three verifications' pages, more than
# its reserve (the file grows). Each store must hold exactly its image's
# pages, the rollbacks to s3 and s4 must give the target its state then
# (it checks every page), `criu restore` of s4 too; s5, after two
# rollbacks (which stop a reserve's filling, and let it go on after
# them), uses its reserve too; and the reserve files must be gone when
# the session stops. With FP_DUMP_STORE_RESERVE=0 there
# is none.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/res.st
grow_session res --mib=16 --write-pages=200
R=$FORKPOINT_HOME/sessions/res/.store-reserve

verify() { # N: verification N passes (and rewrites the next pages)
	local line
	line=$(ct_verify "$st" "$pid") || fail "verification $1: $line"
	[[ $line == "verify $1 ok"* ]] || fail "expected verification $1: $line"
}
# used SNAP: the reserve's pages (its store was written over it, beside the pre-copy)
used() {
	grep -q "$pid: page store written beside the pre-copy" "$S/$1/dump.log" ||
		fail "$1's store was not written beside: $(grep -h 'page store' "$S/$1/dump.log")"
	sed -n "s/.* $pid: the page store written over its reserve (\([0-9]*\) pages.*/\1/p" "$S/$1/dump.log" | grep . ||
		fail "$1 did not use its reserve: $(grep -h 'page store' "$S/$1/dump.log")"
}
# exact SNAP JSON: its store holds exactly its image's pages
exact() {
	local f n
	f=$(ls "$S/$1"/pages-*.img) || fail "$1: not one page store: $(ls "$S/$1")"
	n=$(json_field "$2" pages)
	(($(stat -c %s "$f") == n * 4096)) || fail "$1: $f has $(stat -c %s "$f") bytes for $n pages"
}

verify 1
snap_json res s1 "$WORK/s1.json" # full
verify 2
snap_json res s2 "$WORK/s2.json" # the first incremental one: its reserve is for s3
wait_for 20 test -e "$R/$pid" || fail "no reserve after s2: $(ls -la "$R" 2>&1)"
verify 3
snap_json res s3 "$WORK/s3.json"
reserved=$(used s3)
((reserved > $(json_field "$WORK/s3.json" pages))) || fail "s3: its reserve of $reserved pages is not bigger"
exact s3 "$WORK/s3.json"

wait_for 20 test -e "$R/$pid" || fail "no reserve after s3"
verify 4
verify 5
verify 6
snap_json res s4 "$WORK/s4.json"
reserved=$(used s4)
((reserved < $(json_field "$WORK/s4.json" pages))) || fail "s4: its reserve of $reserved pages is not smaller"
exact s4 "$WORK/s4.json"

verify 7
"$FP" restore res s3 >"$WORK/r.out" 2>&1 || fail "restore s3: $(cat "$WORK/r.out")"
verify 4
"$FP" restore res s4 >"$WORK/r.out" 2>&1 || fail "restore s4: $(cat "$WORK/r.out")"
verify 7
# the reserve made after s4, its filling stopped by each rollback and gone
# on after it, is s5's
wait_for 20 test -e "$R/$pid" || fail "the reserve for s5 is not filled after the rollbacks: $(ls -la "$R")"
snap_json res s5 "$WORK/s5.json"
used s5 >/dev/null
exact s5 "$WORK/s5.json"
verify 8
"$FP" restore res s5 >"$WORK/r.out" 2>&1 || fail "restore s5: $(cat "$WORK/r.out")"
verify 8
"$FP" stop --kill res >/dev/null 2>&1
wait_for 15 test ! -e "/proc/$pid" || fail "session did not stop"
wait_for 15 test ! -e "$R" || fail "reserves left after the session: $(ls -la "$R")"

criu_restore_verify "$S/s4" "$st" "$pid"
kill -9 "$pid" 2>/dev/null

# A rollback while a reserve fills (held after its first MiB): the
# rollback stops the filling, which goes on after it where it stopped; the
# next snapshot uses the whole file.
st=$WORK/held.st
FORKPOINT_FAULT=reserve-fill-held grow_session held --mib=16 --write-pages=200
R=$FORKPOINT_HOME/sessions/held/.store-reserve
verify 1
snap_json held h1 "$WORK/h1.json"
verify 2
snap_json held h2 "$WORK/h2.json"
wait_for 20 test -e "$R/reserve-fill-held.paused" || fail "the reserve's filling was not held: $(ls -la "$R" 2>&1)"
verify 3
"$FP" restore held h2 >"$WORK/r.out" 2>&1 || fail "restore h2 while the reserve fills: $(cat "$WORK/r.out")"
test ! -e "$R/$pid" || fail "the reserve was full before the rollback: the test shows nothing"
touch "$R/reserve-fill-held.go"
wait_for 20 test -e "$R/$pid" || fail "the reserve's filling did not go on after the rollback: $(ls -la "$R")"
verify 3
snap_json held h3 "$WORK/h3.json"
used h3 >/dev/null
exact h3 "$WORK/h3.json"
"$FP" restore held h3 >"$WORK/r.out" 2>&1 || fail "restore h3: $(cat "$WORK/r.out")"
verify 4
"$FP" stop --kill held >/dev/null 2>&1

st=$WORK/off.st
FP_DUMP_STORE_RESERVE=0 grow_session off --mib=16 --write-pages=200
for i in 1 2 3 4; do
	verify "$i"
	snap_json off "o$i" "$WORK/o$i.json"
done
! grep -q 'reserve' "$S"/o*/dump.log || fail "a reserve though FP_DUMP_STORE_RESERVE=0"
test ! -e "$FORKPOINT_HOME/sessions/off/.store-reserve" || fail "a reserve directory though FP_DUMP_STORE_RESERVE=0"
"$FP" stop --kill off >/dev/null 2>&1
echo ok
