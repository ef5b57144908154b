# The rollback's reads of SNAP's pages without io_uring (the session helper
# started with FP_ROLLBACK_NO_URING=1): rollback_verify's whole check on
# the pread path, which a kernel without io_uring takes: damaged pages are
# refused before anything is touched, repaired ones restore in place and
# the target proves every page.
export FP_ROLLBACK_NO_URING=1
source "$(dirname "$0")/rollback_verify.sh"
