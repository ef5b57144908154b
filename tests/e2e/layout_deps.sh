# The layers of docs/hacking.md ("Data flow") point down only: checked on what
# the compiler really included (the -MMD dependency files of the last build),
# so a header pulled in through another header counts too.
source "$(dirname "$0")/../lib.sh"

obj=$BUILD/obj
[[ -d $obj/restore && -d $obj/helper/ptrace && -d $obj/helper/dump ]] || { echo "no build in $BUILD: run make all first"; exit 77; }

# forbid FOLDER PATTERN WHY: no object of FOLDER depends on a header matching
# PATTERN (a folder of helper/ is matched with or without its helper/ prefix).
forbid() {
	local bad d=$obj/$1
	[[ -d $d ]] || d=$obj/helper/$1
	[[ -d $d ]] || fail "no objects of $1/ in $obj"
	bad=$(grep -lE "(^| )(helper/)?$2" "$d"/*.d 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
	[[ -z $bad ]] || fail "$1/ includes $2 headers ($bad): $3"
}
forbid restore 'dump/' "the restorer must not depend on the dumper; move the shared declaration to ptrace/ or images/"
forbid restore 'session/' "the restorer must not depend on the session daemon"
forbid ptrace '(dump|session|restore)/' "the ptrace library is below the dumper and the restorer"
forbid images '(dump|session|restore|ptrace)/' "images/ is the format only"
forbid dump '(session|restore)/' "the dumper is below the session daemon"

# The command is a thin client of the public API: cli/ sees include/forkpoint.h
# and its own headers only (directly or through another header). The files
# below still call internal layers and shrink towards none; a file that is
# not listed may not start to.
cli_internal_ok=" cli_internal cmd_build cmd_config cmd_doctor cmd_fg job_keeper "
[[ -d $obj/cli ]] || fail "no objects of cli/ in $obj"
for d in "$obj"/cli/*.d; do
	base=$(basename "$d" .d)
	[[ $cli_internal_ok == *" $base "* ]] && continue
	bad=$(sed -e 's/\\$//' "$d" | tr ' ' '\n' | grep -E '\.h:?$' | tr -d ':' | grep -vE '^(cli|include)/' | sort -u | tr '\n' ' ')
	[[ -z $bad ]] || fail "cli/$base.c includes internal headers ($bad): the command uses include/forkpoint.h only; add the call it needs to the public API"
done
echo ok
