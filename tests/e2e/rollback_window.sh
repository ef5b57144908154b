# A rollback in place whose pages do not fit in its window streams them
# (FORKPOINT_FAULT=rollback-window-8-pages makes a small target take that
# path): every page is proven before anything is written (damaged pages:
# refused, the session as it was), a failure half way through the windows
# brings the state before back, and without faults the target proves
# every page of SNAP.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"
st=$WORK/status
FORKPOINT_FAULT=rollback-window-8-pages,rollback-after-40-pages "$FP" run --detach --name rw -- "$T/ct_explore" "$st" \
	--mib=16 >/dev/null || fail "run"
track_pid "$(session_field rw helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field rw target_pid)
track_pid "$pid"
S=$FORKPOINT_HOME/sessions/rw/snapshots

step 1
"$FP" snap rw s1 >/dev/null || fail "snap s1"
step 4 # ~4% of the pages written: many windows of 8 pages
at 5

# failing after 40 pages, in the fifth window: the state before comes back
err=$("$FP" restore rw s1 --json 2>&1) && fail "a rollback failing on purpose succeeded: $err"
[[ $err == *"failing on purpose"* && $err == *"back in its state from before"* ]] || fail "message: $err"
[[ $(session_field rw target_pid) == "$pid" ]] || fail "the failed rollback changed the pid"
at 5

# damaged pages (FORKPOINT_FAULT fired once already): refused before the
# first window is written
cp -a "$S/s1" "$WORK/keep-s1"
python3 - "$S/s1" <<'PY' || fail "flipping pages"
import glob, sys
for f in glob.glob(sys.argv[1] + "/pages-*.img"):
    with open(f, "r+b") as fh:
        b = bytearray(fh.read())
        for i in range(100, len(b), 4096):
            b[i] ^= 0x5a
        fh.seek(0); fh.write(b)
PY
out=$("$FP" restore rw s1 2>&1) && fail "damaged pages restored: $out"
[[ $out == *"left as it was"* ]] || fail "damaged pages: $out"
at 5
cp -a "$WORK/keep-s1/." "$S/s1/"

# and without the fault: in place, window by window, every page of s1
step 1
"$FP" restore rw s1 --json >"$WORK/r.json" || fail "restore: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "not in place: $(cat "$WORK/r.json")"
pages=$(json_field "$WORK/r.json" pages)
(( pages > 8 )) || fail "only $pages pages written back: the windows were not exercised"
at 1
step 2
"$FP" snap rw s3 --json >"$WORK/s.json" || fail "snap s3"
[[ $(json_field "$WORK/s.json" full) == False ]] || fail "snap after the rollback was full: $(cat "$WORK/s.json")"
"$FP" restore rw s1 >/dev/null || fail "second restore"
at 1
"$FP" stop rw
echo ok
