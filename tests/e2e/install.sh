# make install PREFIX=DIR: the installed command works from there and finds
# its installed shim; pkg-config knows where the shim is.
source "$(dirname "$0")/../lib.sh"

prefix=$WORK/prefix
make -s -C "$ROOT" install PREFIX="$prefix" >"$WORK/install.log" 2>&1 || fail "make install: $(tail -5 "$WORK/install.log")"
[[ -x $prefix/bin/forkpoint ]] || fail "no $prefix/bin/forkpoint"
[[ -f $prefix/lib/forkpoint/libforkpoint-preload.so ]] || fail "no installed shim"
shim=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --variable=shim forkpoint) || fail "pkg-config"
[[ $shim == "$prefix/lib/forkpoint/libforkpoint-preload.so" ]] || fail "pkg-config shim is $shim"

# The installed binary, run from elsewhere, preloads the installed shim.
out=$(cd / && env -u FORKPOINT_SHIM "$prefix/bin/forkpoint" run -- sh -c 'cat /proc/$$/maps') || fail "installed run"
grep -q "$prefix/lib/forkpoint/libforkpoint-preload.so" <<<"$out" || fail "installed shim not used"
"$prefix/bin/forkpoint" --help | grep -q "run" || fail "installed --help"
echo ok
