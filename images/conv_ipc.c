/* SysV IPC messages: ipcns-shm-<id>.img (criu_msgs_ipc.h), between the C
 * structs and the code protoc-c generates from proto/ipc.proto. */
#include <errno.h>
#include <stdlib.h>

#include "images/criu_io.h"
#include "images/criu_msgs_ipc.h"
#include "images/pb_conv.h"
#include "images/proto/ipc.pb-c.h"

#define IPC_DESC(X) X(VAL, key) X(VAL, uid) X(VAL, gid) X(VAL, cuid) X(VAL, cgid) X(VAL, mode) X(VAL, id)
PB_CONV(cr_ipc_desc, cr_ipc_desc, Fp__IpcDescEntry, fp__ipc_desc_entry, IPC_DESC);

#define IPC_SHM(X) X(MSG, desc, cr_ipc_desc) X(VAL, size) X(OPT, in_pagemaps) X(OPT, hugetlb_flag)
PB_CONV(cr_ipc_shm, cr_ipc_shm, Fp__IpcShmEntry, fp__ipc_shm_entry, IPC_SHM);

#define IPC_VAR(X) \
	X(AFIX, sem_ctls) X(VAL, msg_ctlmax) X(VAL, msg_ctlmnb) X(VAL, msg_ctlmni) X(VAL, auto_msgmni) \
	X(VAL, shm_ctlmax) X(VAL, shm_ctlall) X(VAL, shm_ctlmni) X(VAL, shm_rmid_forced) X(VAL, mq_queues_max) \
	X(VAL, mq_msg_max) X(VAL, mq_msgsize_max) X(OPT, mq_msg_default) X(OPT, mq_msgsize_default) \
	X(OPT, msg_next_id) X(OPT, sem_next_id) X(OPT, shm_next_id)
PB_CONV(cr_ipc_var, cr_ipc_var, Fp__IpcVarEntry, fp__ipc_var_entry, IPC_VAR);

int cr_write_ipc_var(int dirfd, const char *name, const cr_ipc_var *v, fp_error *err)
{
	return cr_write_one(dirfd, name, CR_IPCNS_VAR_MAGIC, &cr_ipc_var_desc, v, err);
}

int cr_read_ipc_var(int dirfd, const char *name, cr_ipc_var *v, fp_error *err)
{
	return cr_read_one(dirfd, name, CR_IPCNS_VAR_MAGIC, &cr_ipc_var_desc, v, err);
}

int cr_write_ipc_shm(int dirfd, const char *name, const cr_ipc_shm *s, size_t n, fp_error *err)
{
	return cr_write_array(dirfd, name, CR_IPCNS_SHM_MAGIC, &cr_ipc_shm_desc, s, n, err);
}

int cr_read_ipc_shm(int dirfd, const char *name, cr_ipc_shm **s, size_t *n, fp_error *err)
{
	if (cr_read_array(dirfd, name, CR_IPCNS_SHM_MAGIC, &cr_ipc_shm_desc, (void **)s, n, err))
		return -1;
	for (size_t i = 0; i < *n; i++)
		if (!(*s)[i].has_in_pagemaps || !(*s)[i].in_pagemaps) {
			uint32_t id = (*s)[i].desc.id;
			cr_free_array(&cr_ipc_shm_desc, *s, *n);
			*s = NULL;
			*n = 0;
			return fp_fail(err, ENOTSUP, "%s: segment %u keeps its bytes in the image itself (an old CRIU's "
						     "layout); only pages in pagemap-shmem images are read",
				       name, id);
		}
	return 0;
}
