# examples/api_dump.c, built as a user would: against the installed library
# (make install into a temporary prefix), with only `pkg-config forkpoint`'s
# flags; it dumps a child, restores it and has it check its memory.
# Also: DESTDIR stages an installation under another root.
source "$(dirname "$0")/../lib.sh"
command -v pkg-config >/dev/null || { echo "no pkg-config"; exit 77; }

prefix=$WORK/prefix
make -s -C "$ROOT" install PREFIX="$prefix" >"$WORK/install.log" 2>&1 || fail "make install: $(tail -5 "$WORK/install.log")"
for f in lib/libforkpoint.so.0.1.0 lib/libforkpoint.so.0 lib/libforkpoint.so include/forkpoint.h lib/pkgconfig/forkpoint.pc; do
	[[ -e $prefix/$f ]] || fail "make install did not install $f"
done
[[ $(ls "$prefix/include") == forkpoint.h ]] || fail "installed headers: $(ls "$prefix/include") (only forkpoint.h is public)"
soname=$(readelf -d "$prefix/lib/libforkpoint.so.0.1.0" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[[ $soname == libforkpoint.so.0 ]] || fail "soname is '$soname'"
# Only the public API is exported.
other=$(nm -D --defined-only "$prefix/lib/libforkpoint.so.0" | awk '$3 !~ /^forkpoint_/ && $3 != "FORKPOINT_0" {print $3}')
[[ -z $other ]] || fail "libforkpoint.so exports more than forkpoint_*: $(head -c 300 <<<"$other")"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs forkpoint) || fail "pkg-config forkpoint"
[[ $flags == *"-I$prefix/include"* && $flags == *-lforkpoint* ]] || fail "pkg-config gives '$flags'"
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
