# Settings come from the environment, then $FORKPOINT_CONFIG, then the user's
# file, then /etc/forkpoint/config, then the default; `forkpoint config`
# names where each came from; a setting from a file is really used; unsafe
# or broken files stop every command with the file and line.
source "$(dirname "$0")/../lib.sh"

home_from_files=$FORKPOINT_HOME
unset FORKPOINT_HOME FORKPOINT_CONFIG
export XDG_CONFIG_HOME=$WORK/xdg
mkdir -p "$XDG_CONFIG_HOME/forkpoint"
user=$XDG_CONFIG_HOME/forkpoint/config
system=/etc/forkpoint/config

src() { "$FP" config --json "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["value"], d["source"])'; }

[[ $(src criu_probe_timeout) == "None default" ]] || fail "no file, no env: $(src criu_probe_timeout)"

system_owned=0
if [[ ! -e $system && $EUID == 0 ]]; then
	system_owned=1
	mkdir -p /etc/forkpoint
	trap 'rm -f "$system"; rmdir /etc/forkpoint 2>/dev/null; cleanup' EXIT
	printf '# system\ncriu_probe_timeout = 7\n' >"$system"
	[[ $(src criu_probe_timeout) == "7 $system:2" ]] || fail "system level: $(src criu_probe_timeout)"
else
	skip_part "the system level" "$system exists already, or not root"
fi

printf 'criu_probe_timeout = 8\n' >"$user"
[[ $(src criu_probe_timeout) == "8 $user:1" ]] || fail "user level over system: $(src criu_probe_timeout)"

printf 'criu_probe_timeout = "9"   # quoted\n' >"$WORK/explicit"
export FORKPOINT_CONFIG=$WORK/explicit
[[ $(src criu_probe_timeout) == "9 $WORK/explicit:1" ]] || fail "FORKPOINT_CONFIG over user: $(src criu_probe_timeout)"

[[ $(FORKPOINT_CRIU_PROBE_TIMEOUT=10 src criu_probe_timeout) == "10 FORKPOINT_CRIU_PROBE_TIMEOUT" ]] ||
	fail "environment over files"

# A setting from a file is the one commands use.
printf 'home = %s\n' "$home_from_files" >>"$WORK/explicit"
"$FP" run --detach --name cfg -- sleep 1000 >/dev/null || fail "run with home from a config file"
[[ -d $home_from_files/sessions/cfg ]] || fail "the session is not under the configured home"
track_pid "$(session_field cfg helper_pid)"
track_pid "$(session_field cfg target_pid)"
"$FP" stop cfg >/dev/null || fail "stop cfg"

# Broken or unsafe files stop every command, naming the file and the fix.
printf 'criu_probe_timout = 3\n' >"$user"
out=$("$FP" ps 2>&1) && fail "a misspelt key was accepted"
[[ $out == *"$user:1: unknown setting"* ]] || fail "misspelt key: $out"
printf 'just words\n' >"$user"
out=$("$FP" ps 2>&1) && fail "a line without = was accepted"
[[ $out == *"$user:1"* ]] || fail "line without =: $out"
printf 'criu_probe_timeout = 8\n' >"$user"
chmod 666 "$user"
out=$("$FP" ps 2>&1) && fail "a world-writable config was accepted"
[[ $out == *"chmod go-w"* ]] || fail "world-writable: $out"
chmod 600 "$user"
mv "$user" "$WORK/real-config"
ln -s "$WORK/real-config" "$user"
out=$("$FP" ps 2>&1) && fail "a config that is a symbolic link was accepted"
[[ $out == *"symbolic link"* ]] || fail "link: $out"
rm -f "$user"
export FORKPOINT_CONFIG=$WORK/missing
out=$("$FP" ps 2>&1) && fail "a missing FORKPOINT_CONFIG was accepted"
[[ $out == *"FORKPOINT_CONFIG=$WORK/missing"* ]] || fail "missing FORKPOINT_CONFIG: $out"
((system_owned)) && rm -f "$system"
echo ok
