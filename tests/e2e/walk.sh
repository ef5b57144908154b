# The random walk of issue 12: snap, rollback to an earlier snapshot, branch,
# snap inside a branch and rm of a middle snapshot, seeded and deterministic,
# on a multi-threaded target with a child, changing mappings and workspace
# files; after every operation every live process proves its whole state.
# FP_WALK_OPS (default 300) and FP_WALK_SEED (default 1) choose the walk.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (pid and mount namespaces, overlay)"; exit 77; }
FP=$FP T=$T WORK=$WORK python3 "$(dirname "$0")/walk.py" || fail "walk (FP_WALK_SEED=${FP_WALK_SEED:-1})"
