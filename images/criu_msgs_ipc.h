/* ipcns-shm-<id>.img's messages (CRIU's ipc-desc.proto and ipc-shm.proto):
 * one entry per SysV shared memory segment. With in_pagemaps its pages are
 * in pagemap-shmem-<id>.img (id = the segment's id), as CRIU 4 writes them;
 * otherwise `size` bytes (rounded up to 4) follow the entry, which this
 * project neither writes nor reads. */
#ifndef FP_CRIU_MSGS_IPC_H
#define FP_CRIU_MSGS_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_error.h"
#include "images/pb.h"

#define CR_IPCNS_SHM_MAGIC 0x46283044u

typedef struct cr_ipc_desc { /* ipc_desc_entry */
	uint32_t key, uid, gid, cuid, cgid;
	uint32_t mode; /* shm_perm.mode: permission bits, SHM_DEST (01000), SHM_LOCKED (02000) */
	uint32_t id;
} cr_ipc_desc;

typedef struct cr_ipc_shm { /* ipc_shm_entry */
	cr_ipc_desc desc;
	uint64_t size;
	bool has_in_pagemaps;
	bool in_pagemaps;
	bool has_hugetlb_flag;
	uint32_t hugetlb_flag;
} cr_ipc_shm;

extern const pb_mdesc cr_ipc_shm_desc;

/* name: "ipcns-shm-<id>.img". */
int cr_write_ipc_shm(int dirfd, const char *name, const cr_ipc_shm *s, size_t n, fp_error *err);
int cr_read_ipc_shm(int dirfd, const char *name, cr_ipc_shm **s, size_t *n, fp_error *err);

#endif
