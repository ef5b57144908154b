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
#define CR_IPCNS_VAR_MAGIC 0x53115007u

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

/* ipcns-var-<id>.img: an IPC namespace's sysctls (kernel/sem, msg*, shm*,
 * fs/mqueue), one entry. */
typedef struct cr_ipc_var { /* ipc_var_entry */
	uint32_t sem_ctls[4];
	size_t n_sem_ctls;
	uint32_t msg_ctlmax, msg_ctlmnb, msg_ctlmni, auto_msgmni;
	uint64_t shm_ctlmax, shm_ctlall;
	uint32_t shm_ctlmni, shm_rmid_forced;
	uint32_t mq_queues_max, mq_msg_max, mq_msgsize_max;
	bool has_mq_msg_default, has_mq_msgsize_default;
	uint32_t mq_msg_default, mq_msgsize_default;
	bool has_msg_next_id, has_sem_next_id, has_shm_next_id;
	uint32_t msg_next_id, sem_next_id, shm_next_id;
} cr_ipc_var;

extern const pb_mdesc cr_ipc_shm_desc, cr_ipc_var_desc;

/* name: "ipcns-shm-<id>.img". */
int cr_write_ipc_shm(int dirfd, const char *name, const cr_ipc_shm *s, size_t n, fp_error *err);
int cr_read_ipc_shm(int dirfd, const char *name, cr_ipc_shm **s, size_t *n, fp_error *err);
/* name: "ipcns-var-<id>.img". */
int cr_write_ipc_var(int dirfd, const char *name, const cr_ipc_var *v, fp_error *err);
int cr_read_ipc_var(int dirfd, const char *name, cr_ipc_var *v, fp_error *err);

#endif
