# The layers of docs/hacking.md ("Data flow") point down only: checked on what
# the compiler really included (the -MMD dependency files of the last build),
# so a header pulled in through another header counts too.
source "$(dirname "$0")/../lib.sh"

obj=$BUILD/obj
[[ -d $obj/restore && -d $obj/ptrace && -d $obj/dump ]] || { echo "no build in $BUILD: run make all first"; exit 77; }

# forbid FOLDER PATTERN WHY: no object of FOLDER depends on a header matching PATTERN.
forbid() {
	local bad
	bad=$(grep -lE "(^| )$2" "$obj/$1"/*.d 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
	[[ -z $bad ]] || fail "$1/ includes $2 headers ($bad): $3"
}
forbid restore 'dump/' "the restorer must not depend on the dumper; move the shared declaration to ptrace/ or images/"
forbid restore 'session/' "the restorer must not depend on the session daemon"
forbid ptrace '(dump|session|restore)/' "the ptrace library is below the dumper and the restorer"
forbid images '(dump|session|restore|ptrace)/' "images/ is the format only"
forbid dump '(session|restore)/' "the dumper is below the session daemon"
echo ok
