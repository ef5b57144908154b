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

# The command is a thin client of the public API: every object of cli/ sees
# include/forkpoint.h and cli/'s own headers only (directly or through
# another header), with no exception; what it needs goes into the API.
[[ -d $obj/cli ]] || fail "no objects of cli/ in $obj"
ncli=0
for d in "$obj"/cli/*.d; do
	base=$(basename "$d" .d)
	[[ -f $ROOT/cli/$base.c ]] || continue # an object left from a file since removed
	ncli=$((ncli + 1))
	bad=$(sed -e 's/\\$//' "$d" | tr ' ' '\n' | grep -E '\.h:?$' | tr -d ':' | grep -vE '^(cli|include)/' | sort -u | tr '\n' ' ')
	[[ -z $bad ]] || fail "cli/$base.c includes internal headers ($bad): the command uses include/forkpoint.h only; add the call it needs to the public API"
done
# Every source of cli/ was compiled and checked (a file without its .d would pass unseen).
nsrc=$(find "$ROOT/cli" -maxdepth 1 -name '*.c' | wc -l)
((ncli == nsrc)) || fail "cli/ has $nsrc sources but $ncli dependency files in $obj/cli: run make all"
# And by what it links to, not only what it includes: no undefined symbol of
# a cli/ object is one that the layers below define, but forkpoint_*.
# (objects whose source is gone, left in a long-lived build/, do not count)
below=$(find "$obj" -name '*.o' ! -path "$obj/cli/*" | while read -r o; do
	rel=${o#"$obj"/}
	[[ -f $ROOT/${rel%.o}.c ]] && printf '%s\0' "$o"
done | xargs -0 nm -g --defined-only 2>/dev/null |
	awk 'NF == 3 {print $3}' | grep -v '^forkpoint_' | sort -u)
used=$(for c in "$ROOT"/cli/*.c; do nm -u "$obj/cli/$(basename "$c" .c).o"; done | awk '{print $NF}' | sort -u)
leak=$(comm -12 <(echo "$below") <(echo "$used") | tr '\n' ' ')
[[ -z $leak ]] || fail "cli/ calls internal functions ($leak): the command uses include/forkpoint.h only"
echo ok
