# Zombie children (exited, killed by a signal) and a stopped child stay what
# they were: dumped as CRIU's TASK_DEAD entries with their wait status and as
# TASK_STOPPED, restored natively as zombies of the same parent and a
# stopped child (ct_zombies checks with waitid WNOWAIT, reaping nothing).
# Four ways, as the other kernel-object tests.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

start_ct zb "$T/ct_zombies"
ct_verify zb 1
kids=$(awk '/^info children/ {print $3, $4, $5}' "$WORK/zb.st" | tr -dc '0-9 ')
for k in $kids; do track_pid "$k"; done
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify zb 2
python3 - "$WORK/r" "$PID" $kids <<'PY' || fail "the image's tree"
import json, subprocess, sys
d, root, exited, killed, stopped = sys.argv[1], *map(int, sys.argv[2:])
ps = json.loads(subprocess.run(["crit", "decode", "-i", d + "/pstree.img"], capture_output=True, check=True).stdout)["entries"]
assert sorted(int(p["pid"]) for p in ps) == sorted([root, exited, killed, stopped]), ps
def tc(pid):
    c = json.loads(subprocess.run(["crit", "decode", "-i", "%s/core-%d.img" % (d, pid)], capture_output=True, check=True).stdout)
    return c["entries"][0]["tc"]
assert tc(exited)["task_state"] == 2 and tc(exited)["exit_code"] == 7 << 8, tc(exited)
assert tc(killed)["task_state"] == 2 and tc(killed)["exit_code"] == 15, tc(killed)
PY
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
# The children's pids are free only once pid 1 has reaped them too; the
# stopped child outlives a kill of the root alone.
tree_gone() {
	local k
	for k in $kids; do
		[[ $(cat "/proc/$k/comm" 2>/dev/null) == ct_zombies ]] && kill -9 "$k" 2>/dev/null
	done
	wait_gone "$PID"
	for k in $kids; do wait_gone "$k"; done
}
tree_gone
"$FP" restore -D "$WORK/d" -d --engine native >/dev/null || fail "native restore"
ct_verify zb 3
zb_again() {
	if [[ $1 == "criu restore" ]]; then
		echo "ready $PID" >"$WORK/zb.st" # the image answers verification 3 again
		ct_verify zb 3
	else
		ct_verify zb 4
	fi
}
criu_both_ways "$WORK/d" zb_again
echo ok
