/* A restored thread's capabilities and securebits (rst_int.h).
 *
 * The restorer runs as root with every capability, and a thread it builds
 * starts with the same. A thread that had fewer (a daemon that dropped what
 * it does not need, a program run with a reduced bounding set) must not come
 * back with more. So its sets are given back from the image, in its own
 * calls (capset only changes the calling thread), in an order that keeps
 * each step allowed:
 *   1. securebits KEEP_CAPS and NO_SETUID_FIXUP (with the image's unlocked
 *      bits), so the uid changes that follow keep the capabilities;
 *   2. the ids and groups (rst_task.c);
 *   3. the bounding set: every capability the image's lacks dropped
 *      (PR_CAPBSET_DROP needs CAP_SETPCAP, still held);
 *   4. capset to the image's sets plus CAP_SETPCAP, then the ambient set
 *      raised (each needs the capability permitted and inheritable), then
 *      the image's securebits (also needing CAP_SETPCAP), then capset to
 *      exactly the image's sets.
 * A thread whose sets are the restorer's own (root with everything, the
 * usual case) costs nothing here. */
#include "restore/rst_int.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t word64(const uint32_t *w, size_t n)
{
	return (n > 0 ? w[0] : 0) | (n > 1 ? (uint64_t)w[1] << 32 : 0);
}

struct capsets {
	uint64_t inh, prm, eff, bnd, amb;
};

static struct capsets image_sets(const cr_creds *cr)
{
	return (struct capsets){ word64(cr->cap_inh, cr->n_cap_inh), word64(cr->cap_prm, cr->n_cap_prm),
				 word64(cr->cap_eff, cr->n_cap_eff), word64(cr->cap_bnd, cr->n_cap_bnd),
				 word64(cr->cap_amb, cr->n_cap_amb) };
}

static int last_cap(void)
{
	static int last = -1;
	if (last < 0) {
		FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
		if (!f || fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = 40;
		if (f)
			fclose(f);
	}
	return last;
}

/* The restorer's own sets: what a thread it builds starts with. */
static int own_sets(struct capsets *s, fp_error *err)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		return fp_fail(err, errno, "capget: %s", strerror(errno));
	*s = (struct capsets){ d[0].inheritable | (uint64_t)d[1].inheritable << 32,
			       d[0].permitted | (uint64_t)d[1].permitted << 32,
			       d[0].effective | (uint64_t)d[1].effective << 32, 0, 0 };
	for (int c = 0; c <= last_cap(); c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			s->bnd |= 1ull << c;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
			s->amb |= 1ull << c;
	}
	return 0;
}

/* The restorer's sets do not change while it runs: read once. */
static struct capsets own_cache;
static fp_error own_err;
static int own_rc;
static pthread_once_t own_once = PTHREAD_ONCE_INIT;

static void read_own(void)
{
	own_rc = own_sets(&own_cache, &own_err);
}

int rst_caps_wanted(const cr_creds *cr, bool *wanted, fp_error *err)
{
	pthread_once(&own_once, read_own);
	if (own_rc) {
		*err = own_err;
		return -1;
	}
	struct capsets own = own_cache, img = image_sets(cr);
	uint64_t all = last_cap() >= 63 ? ~0ull : (1ull << (last_cap() + 1)) - 1;
	/* the bounding set is compared over the capabilities this kernel has */
	*wanted = own.inh != img.inh || own.prm != img.prm || own.eff != img.eff || (own.bnd & all) != (img.bnd & all) ||
		  own.amb != img.amb;
	return 0;
}

uint32_t rst_caps_keep_bits(uint32_t secbits)
{
	const uint32_t locked = SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
				SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
	return (secbits & ~locked & ~(uint32_t)SECBIT_NO_CAP_AMBIENT_RAISE) | SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP;
}

static int capset_q(rst_proc *p, pid_t tid, const char *what, uint64_t inh, uint64_t prm, uint64_t eff, fp_error *err)
{
	struct {
		struct __user_cap_header_struct h;
		struct __user_cap_data_struct d[2];
	} a = { { _LINUX_CAPABILITY_VERSION_3, 0 },
		{ { (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		  { (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) } } };
	uint64_t remote;
	if (rst_q_room(p, 1, sizeof(a) + 16, err))
		return -1;
	void *local = rst_q_data(p, sizeof(a), &remote, err);
	if (!local)
		return -1;
	memcpy(local, &a, sizeof(a));
	return rst_q(p, tid, what, RST_MUST, SYS_capset, remote, remote + offsetof(__typeof__(a), d), 0, 0, 0, 0, NULL,
		     err);
}

int rst_caps_after_ids(rst_proc *p, pid_t tid, const cr_creds *cr, uint32_t bits_now, fp_error *err)
{
	struct capsets img = image_sets(cr);
	char what[128];
	for (int c = 0; c <= last_cap(); c++) {
		if (img.bnd & (1ull << c))
			continue;
		snprintf(what, sizeof(what), "prctl(PR_CAPBSET_DROP, %d) (thread %d)", c, (int)tid);
		if (rst_q(p, tid, what, RST_MUST, SYS_prctl, PR_CAPBSET_DROP, (uint64_t)c, 0, 0, 0, 0, NULL, err))
			return -1;
	}
	const uint64_t setpcap = 1ull << CAP_SETPCAP;
	snprintf(what, sizeof(what), "capset (capabilities of thread %d)", (int)tid);
	if (capset_q(p, tid, what, img.inh, img.prm | setpcap, img.eff | setpcap, err))
		return -1;
	for (int c = 0; c <= last_cap(); c++) {
		if (!(img.amb & (1ull << c)))
			continue;
		snprintf(what, sizeof(what), "prctl(PR_CAP_AMBIENT_RAISE, %d) (thread %d)", c, (int)tid);
		if (rst_q(p, tid, what, RST_MUST, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (uint64_t)c, 0, 0, 0, NULL,
			  err))
			return -1;
	}
	if (bits_now != cr->secbits) {
		snprintf(what, sizeof(what), "prctl(PR_SET_SECUREBITS, 0x%x) (thread %d)", cr->secbits, (int)tid);
		if (rst_q(p, tid, what, RST_MUST, SYS_prctl, PR_SET_SECUREBITS, cr->secbits, 0, 0, 0, 0, NULL, err))
			return -1;
	}
	if ((img.prm & setpcap) && (img.eff & setpcap))
		return 0;
	snprintf(what, sizeof(what), "capset (capabilities of thread %d, without CAP_SETPCAP)", (int)tid);
	return capset_q(p, tid, what, img.inh, img.prm, img.eff, err);
}
