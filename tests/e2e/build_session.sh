# forkpoint build: a FROM-scratch image made by buildah from files the test
# supplies (bash, sleep and their libraries), and a shell session inside it:
# the image's root, ENV and WORKDIR; its workspace goes back with the memory
# on restore, jobs included; the image's own WORKDIR is never written;
# cleanup removes the container.
source "$(dirname "$0")/../lib.sh"
command -v buildah >/dev/null || { echo "buildah is not installed (make setup installs it)"; exit 77; }
[[ $EUID == 0 ]] || { echo "forkpoint build needs root"; exit 77; }

ctx=$WORK/ctx
mkdir -p "$ctx/rootfs"
copy_with_libs() { # BINARY: the binary and every library it loads, at the same paths
	local f
	for f in "$1" $(ldd "$1" | grep -o '/[^ ]*'); do
		mkdir -p "$ctx/rootfs$(dirname "$f")"
		cp -L "$f" "$ctx/rootfs$f"
	done
}
copy_with_libs "$(command -v bash)"
copy_with_libs "$(command -v sleep)"
mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/app"
[[ -e $ctx/rootfs/bin/bash ]] || ln -s "$(command -v bash)" "$ctx/rootfs/bin/bash"
echo from-the-image >"$ctx/rootfs/app/seed"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY rootfs/ /
ENV GREETING=hello PATH=/usr/bin:/bin
WORKDIR /app
DF

json=$("$FP" build --name img --json "$ctx") || fail "build: $json"
ctr=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["container"])' "$json")
image=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["image"])' "$json")
root=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["root"])' "$json")
trap 'buildah --storage-driver vfs rm "$ctr" >/dev/null 2>&1; buildah --storage-driver vfs rmi "$image" >/dev/null 2>&1; cleanup' EXIT
track_pid "$(session_field img helper_pid)"

out=$("$FP" exec img -c 'echo "$GREETING $(pwd) $(<seed)"') || fail "exec: $out"
[[ $out == "hello /app from-the-image" ]] || fail "not the image's ENV, WORKDIR or files: '$out'"
"$FP" exec img -c '[[ ! -e /etc/debian_version && ! -e /usr/lib/os-release ]]' || fail "the host's root shows through"

"$FP" exec img -c 'X=one; echo first >notes; cd /app; sleep 300 & true' || fail "exec before the snapshot"
"$FP" snap img s1 >/dev/null || fail "snap"
"$FP" exec img -c 'X=two; echo second >notes; echo extra >more; cd /; kill %1' || fail "exec after the snapshot"
"$FP" restore img s1 >/dev/null || fail "restore s1"
out=$("$FP" exec img -c 'echo "$X $(pwd) $(<notes)"; [[ -e more ]] && echo more-exists; jobs') || fail "exec after restore: $out"
[[ $out == "one /app first"*"sleep 300"* ]] || fail "the session did not come back to s1: '$out'"
[[ $out != *more-exists* ]] || fail "a file made after s1 survived the restore: '$out'"
[[ ! -e $root/app/notes && $(<"$root/app/seed") == from-the-image ]] || fail "the image's WORKDIR was written"
"$FP" cleanup img >/dev/null || fail "cleanup"
buildah --storage-driver vfs containers --quiet --filter "name=$ctr" | grep -q . && fail "cleanup left the container $ctr"
[[ ! -d $FORKPOINT_HOME/sessions/img ]] || fail "cleanup left the session directory"
echo ok
