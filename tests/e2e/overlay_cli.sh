#!/usr/bin/env bash
# forkpoint diff and gc on a workspace store laid out by hand the way
# overlay/ writes it (no mount needed): layers with a whiteout, an opaque dir
# and a plain change; gc keeps every layer a snapshot names.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (trusted.* xattrs)"; exit 77; }

S=$FORKPOINT_HOME/sessions/ws1/workspace
BASE=$WORK/base
mkdir -p "$BASE/d" "$S"/{layers,work,chains} "$S"/layers/{1,2,3,4} "$S/work/4"
echo keep >"$BASE/keep"; echo old >"$BASE/mod"; echo gone >"$BASE/del"; echo x >"$BASE/d/x"
echo "$BASE" >"$S/base"
echo new >"$S/layers/2/mod"                               # modified
mknod "$S/layers/2/del" c 0 0                             # deleted (whiteout)
mkdir "$S/layers/2/d" && echo y >"$S/layers/2/d/y"
python3 -c "import os,sys; os.setxattr(sys.argv[1], 'trusted.overlay.opaque', b'y')" "$S/layers/2/d"  # d replaced wholesale
echo add >"$S/layers/2/added"
chmod 600 "$S/layers/2/mod"
printf 'upper=4\nlowers=2 1\nnext=5\n' >"$S/state"
printf 'layers=1\n' >"$S/chains/a"
printf 'layers=2 1\n' >"$S/chains/b"
: >"$S/lock"

out=$("$FP" diff ws1 a b) || fail "diff failed"
echo "$out"
grep -q '^A .*added$' <<<"$out" || fail "added missing"
grep -q '^D .*del$' <<<"$out" || fail "whiteout not reported as deleted"
grep -q '^M content,mode *mod$' <<<"$out" || fail "content+mode change missing"
grep -q '^D .*d/x$' <<<"$out" || fail "opaque dir: hidden lower file not deleted"
grep -q '^A .*d/y$' <<<"$out" || fail "opaque dir: new file missing"
grep -q keep <<<"$out" && fail "unchanged file listed"
"$FP" diff ws1 a b --json | grep -q '"path": "mod"' || fail "json output"
"$FP" diff ws1 a nosuch >/dev/null 2>&1 && fail "diff with a missing snapshot succeeded"

"$FP" gc ws1 | grep -q 'removed 1 layers' || fail "gc should remove only layer 3"
[[ -d $S/layers/1 && -d $S/layers/2 && -d $S/layers/4 && ! -d $S/layers/3 ]] || fail "gc removed the wrong layers"
rm "$S/chains/a"
"$FP" gc >/dev/null || fail "gc of all sessions"
[[ -d $S/layers/1 ]] || fail "layer 1 is still in the live chain"
echo ok
