# shellcheck shell=bash
# Benchmark workload: an idle bash, run as `bash -c "$(cat target_bash.sh)" bash STATUS`
# with fd 3 and fd 4 the two ends of one pipe (the driver sets them up), so
# bash sleeps in read(2) on a pipe it holds both ends of and never wakes on
# its own. Speaks the ct_* status-file protocol: "ready PID token=T", then
# each SIGUSR2 appends "verify N ok pid=P token=T". T is made at start-up and
# N counts in bash's own variables: reading them back after a restore shows
# the shell's state survived.
st=$1
token=$SRANDOM$SRANDOM
n=0
trap 'n=$((n + 1)); echo "verify $n ok pid=$$ token=$token" >>"$st"' USR2
echo "ready $$ token=$token" >>"$st"
# read returns >128 when a trapped signal interrupts it; anything else (EOF,
# a bad fd 3) is a broken set-up: exit rather than spin.
while :; do
	read -r -u 3 _
	s=$?
	((s > 128)) || exit 1
done
