# examples/api_dump.c, built as a user would: against the installed library
# (make install into a temporary prefix), with only `pkg-config forkpoint`'s
# flags; it dumps a child, restores it and has it check its memory.
# Also: DESTDIR stages an installation under another root.
source "$(dirname "$0")/../lib.sh"
command -v pkg-config >/dev/null || { echo "no pkg-config"; exit 77; }

prefix=$WORK/prefix
# The version the header reports is the library's file name and pkg-config's.
ver=$(sed -n 's/^#define FORKPOINT_VERSION "\(.*\)"$/\1/p' "$ROOT/include/forkpoint.h")
[[ $ver == 0.* ]] || fail "no FORKPOINT_VERSION in include/forkpoint.h"
make -s -C "$ROOT" install PREFIX="$prefix" >"$WORK/install.log" 2>&1 || fail "make install: $(tail -5 "$WORK/install.log")"
for f in lib/libforkpoint.so.$ver lib/libforkpoint.so.0 lib/libforkpoint.so include/forkpoint.h lib/pkgconfig/forkpoint.pc; do
	[[ -e $prefix/$f ]] || fail "make install did not install $f"
done
[[ $(ls "$prefix/include") == forkpoint.h ]] || fail "installed headers: $(ls "$prefix/include") (only forkpoint.h is public)"
soname=$(readelf -d "$prefix/lib/libforkpoint.so.$ver" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[[ $soname == libforkpoint.so.0 ]] || fail "soname is '$soname'"
# Only the public API is exported.
other=$(nm -D --defined-only "$prefix/lib/libforkpoint.so.0" | awk '$3 !~ /^forkpoint_/ && $3 !~ /^FORKPOINT_[0-9.]+$/ {print $3}')
[[ -z $other ]] || fail "libforkpoint.so exports more than forkpoint_*: $(head -c 300 <<<"$other")"
# 0.1's calls keep their symbol version, 0.2's and 0.3's have theirs (api/forkpoint.map).
syms=$(objdump -T "$prefix/lib/libforkpoint.so.0")
grep -qE 'FORKPOINT_0 +forkpoint_dump$' <<<"$syms" || fail "forkpoint_dump is not at FORKPOINT_0: $(grep ' forkpoint_dump$' <<<"$syms")"
grep -qE 'FORKPOINT_0\.2 +forkpoint_dump_with$' <<<"$syms" || fail "forkpoint_dump_with is not at FORKPOINT_0.2: $(grep forkpoint_dump_with <<<"$syms")"
for f in forkpoint_config forkpoint_doctor forkpoint_build forkpoint_job_keep forkpoint_job_foreground; do
	grep -qE "FORKPOINT_0\.3 +$f\$" <<<"$syms" || fail "$f is not at FORKPOINT_0.3: $(grep "$f" <<<"$syms")"
done

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs forkpoint) || fail "pkg-config forkpoint"
[[ $flags == *"-I$prefix/include"* && $flags == *-lforkpoint* ]] || fail "pkg-config gives '$flags'"
[[ $(pkg-config --modversion forkpoint) == "$ver" ]] || fail "pkg-config version $(pkg-config --modversion forkpoint), not $ver"
# try_c NAME LINE...: a program of these lines, built against the installed
# header and library with pkg-config's flags alone and run; $out has its output.
try_c() {
	local name=$1
	shift
	printf '%s\n' '#include <stdio.h>' '#include <unistd.h>' '#include <forkpoint.h>' "$@" >"$WORK/$name.c"
	cc -Wall -Wextra -Werror -o "$WORK/$name" "$WORK/$name.c" $flags 2>"$WORK/$name.log" ||
		fail "$name does not build: $(cat "$WORK/$name.log")"
	out=$(LD_LIBRARY_PATH=$prefix/lib "$WORK/$name") || fail "$name: $out"
}
# A 0.2 call: its error names the range.
try_c v02 'int main(void) { forkpoint_error e; forkpoint_dump_options *o;' \
	'if (forkpoint_dump_options_new(getpid(), "/tmp/never", &o, &e) < 0) return 1;' \
	'int rc = forkpoint_dump_options_set(o, FORKPOINT_DUMP_OPT_THREADS, 99, &e);' \
	'forkpoint_dump_options_free(o); printf("%d %d %s\n", rc, e.code, e.message); return 0; }'
[[ $out == "-1 2 compression threads 99 is out of range: give 1..16" ]] || fail "v02 said: $out"
# A 0.3 call: the home setting and where it came from, as the command says it.
try_c v03 'int main(void) { forkpoint_error e; forkpoint_info *r;' \
	'if (forkpoint_config("home", &r, &e) < 0) { puts(e.message); return 1; }' \
	'printf("%s %s %s\n", forkpoint_version(), forkpoint_info_get(r, "value"), forkpoint_info_get(r, "source"));' \
	'forkpoint_info_free(r); return 0; }'
[[ $out == "$ver $FORKPOINT_HOME FORKPOINT_HOME" ]] || fail "v03 said: $out"
[[ $("$FP" config home) == "$FORKPOINT_HOME" ]] || fail "the command's home is not the library's"
cc -Wall -Wextra -Werror -o "$WORK/api_dump" "$ROOT/examples/api_dump.c" $flags 2>"$WORK/cc.log" ||
	fail "examples/api_dump.c does not build against the installed library: $(cat "$WORK/cc.log")"
LD_LIBRARY_PATH=$prefix/lib ldd "$WORK/api_dump" | grep -q "$prefix/lib/libforkpoint.so.0" || fail "not linked with the installed library"
out=$(cd / && LD_LIBRARY_PATH=$prefix/lib timeout 120 "$WORK/api_dump" "$WORK/img" 2>&1) || fail "api_dump: $out"
[[ $out == *"memory intact"* ]] || fail "api_dump said: $out"
[[ -f $WORK/img/forkpoint.manifest ]] || fail "no image in $WORK/img"
echo "$out"

# DESTDIR: the files go below it, forkpoint.pc names the final PREFIX.
stage=$WORK/stage
make -s -C "$ROOT" install PREFIX=/opt/fp-final DESTDIR="$stage" >"$WORK/install2.log" 2>&1 || fail "make install DESTDIR: $(tail -5 "$WORK/install2.log")"
[[ -e $stage/opt/fp-final/lib/libforkpoint.so.0 && -e $stage/opt/fp-final/include/forkpoint.h ]] || fail "DESTDIR staging"
grep -qx 'prefix=/opt/fp-final' "$stage/opt/fp-final/lib/pkgconfig/forkpoint.pc" || fail "forkpoint.pc prefix with DESTDIR"
[[ ! -e /opt/fp-final ]] || fail "DESTDIR install wrote outside DESTDIR"
echo ok
