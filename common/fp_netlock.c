#include "fp_netlock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_spawn.h"

#define NETLOCK_TIMEOUT_MS 20000

/* The match of one rule, after the chain, as CRIU words it: INPUT drops
 * what comes from the peer, OUTPUT what goes to it. */
static int rule(const fp_tcp_conn *c, bool input, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	if (!inet_ntop(c->family, c->src, s, sizeof(s)) || !inet_ntop(c->family, c->dst, d, sizeof(d)))
		return -1;
	int n = input ? snprintf(buf, len, "--protocol tcp -m mark ! --mark 0xC114 --source %s --sport %u --destination %s "
				 "--dport %u -j DROP", d, c->dport, s, c->sport) :
			snprintf(buf, len, "--protocol tcp -m mark ! --mark 0xC114 --source %s --sport %u --destination %s "
				 "--dport %u -j DROP", s, c->sport, d, c->dport);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int batch(const fp_tcp_conn *c, size_t n, int family, bool lock, fp_error *err);

static int run(const char *const argv[], char *out, size_t olen, fp_error *err)
{
	fp_spawn_opts so = { .timeout_ms = NETLOCK_TIMEOUT_MS };
	fp_spawn_result r;
	if (fp_spawn(argv, &so, out, olen, &r, err))
		return -1;
	return r.exit_code;
}

/* One rule by itself: iptables -w -t filter OP CHAIN <rule>. */
static int one(const char *tool, const char *op, const char *chain, const char *match, char *out, size_t olen,
	       fp_error *err)
{
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", match);
	const char *argv[40] = { tool, "-w", "-t", "filter", op, chain };
	int n = 6;
	for (char *save, *t = strtok_r(copy, " ", &save); t && n < 38; t = strtok_r(NULL, " ", &save))
		argv[n++] = t;
	argv[n] = NULL;
	return run(argv, out, olen, err);
}

/* An IPv6 socket talking to an IPv4 peer (::ffff:a.b.c.d) sends IPv4
 * packets: its rules are iptables'. */
static fp_tcp_conn plain(const fp_tcp_conn *c)
{
	static const uint32_t mapped = 0xffff0000u; /* bytes 00 00 ff ff, read in host order on x86_64 */
	fp_tcp_conn p = *c;
	if (c->family == AF_INET6 && !c->src[0] && !c->src[1] && c->src[2] == mapped && !c->dst[0] && !c->dst[1] &&
	    c->dst[2] == mapped) {
		memset(p.src, 0, sizeof(p.src));
		memset(p.dst, 0, sizeof(p.dst));
		p.family = AF_INET;
		p.src[0] = c->src[3];
		p.dst[0] = c->dst[3];
	}
	return p;
}

static int family_batch(const fp_tcp_conn *all, size_t n, int family, bool lock, fp_error *err)
{
	fp_tcp_conn *c = calloc(n ? n : 1, sizeof(*c));
	if (!c)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		c[i] = plain(&all[i]);
	int rc = batch(c, n, family, lock, err);
	free(c);
	return rc;
}

static int batch(const fp_tcp_conn *c, size_t n, int family, bool lock, fp_error *err)
{
	const char *restore = family == AF_INET ? "iptables-restore" : "ip6tables-restore";
	const char *tool = family == AF_INET ? "iptables" : "ip6tables";
	size_t cap = 256 + n * 2 * 400, used = 0;
	char *text = malloc(cap), line[512];
	if (!text)
		return fp_fail(err, ENOMEM, "out of memory");
	used += (size_t)snprintf(text, cap, "*filter\n");
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (c[i].family != family)
			continue;
		for (int in = 1; in >= 0; in--) {
			if (rule(&c[i], in, line, sizeof(line))) {
				free(text);
				return fp_fail(err, EINVAL, "a TCP connection of family %d with an address iptables cannot take",
					       family);
			}
			used += (size_t)snprintf(text + used, cap - used, "%s %s %s\n", lock ? "-I" : "-D",
						 in ? "INPUT" : "OUTPUT", line);
		}
		k++;
	}
	used += (size_t)snprintf(text + used, cap - used, "COMMIT\n");
	if (!k) {
		free(text);
		return 0;
	}
	char path[] = "/tmp/forkpoint-netlock-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		free(text);
		return fp_fail(err, errno, "cannot create a rules file in /tmp: %s", strerror(errno));
	}
	bool wrote = write(fd, text, used) == (ssize_t)used;
	close(fd);
	free(text);
	char out[1024] = "";
	const char *argv[] = { restore, "-w", "--noflush", path, NULL };
	int rc = wrote ? run(argv, out, sizeof(out), err) : fp_fail(err, EIO, "cannot write %s", path);
	unlink(path);
	if (rc < 0)
		return fp_wrap(err, "running %s (is it installed? Debian: iptables)", restore);
	if (rc == 0)
		return 0;
	if (lock)
		return fp_fail(err, EPERM,
			       "%s could not add the rules that hold %zu TCP connection(s) while they are dumped (exit %d): %s",
			       restore, k, rc, out);
	/* a batch fails whole: some rule was already gone (deleted by hand,
	 * or by a restore of the same image) */
	for (size_t i = 0; i < n; i++) {
		if (c[i].family != family)
			continue;
		for (int in = 1; in >= 0; in--) {
			rule(&c[i], in, line, sizeof(line));
			const char *chain = in ? "INPUT" : "OUTPUT";
			if (one(tool, "-D", chain, line, out, sizeof(out), err) != 0 &&
			    one(tool, "-C", chain, line, out, sizeof(out), err) == 0)
				return fp_fail(err, EPERM, "cannot delete the rule `%s %s` that holds a TCP connection: %s", chain,
					       line, out);
		}
	}
	return 0;
}

int fp_netlock(const fp_tcp_conn *c, size_t n, bool lock, fp_error *err)
{
	if (family_batch(c, n, AF_INET, lock, err))
		return -1;
	if (family_batch(c, n, AF_INET6, lock, err)) {
		fp_error e2;
		if (lock)
			family_batch(c, n, AF_INET, false, &e2); /* all or nothing */
		return -1;
	}
	return 0;
}

size_t fp_netlock_count(const fp_tcp_conn *c, size_t n)
{
	size_t k = 0;
	char line[512], out[256];
	for (size_t i = 0; i < n; i++) {
		fp_tcp_conn p = plain(&c[i]);
		const char *tool = p.family == AF_INET ? "iptables" : "ip6tables";
		for (int in = 1; in >= 0; in--) {
			fp_error err;
			if (rule(&p, in, line, sizeof(line)) == 0 &&
			    one(tool, "-C", in ? "INPUT" : "OUTPUT", line, out, sizeof(out), &err) == 0)
				k++;
		}
	}
	return k;
}
