// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The netlink module. Parsers on messages this kernel sent (tests/fixtures/netlink/, see its
 * README), cut and patched copies of them, and messages built here; then the sockets against
 * real namespaces and veths, with sysfs and ip(8) as the truth. Every namespace and link a test
 * makes is named tnif-<pid>-<n>, remembered, and removed by .fini even when the test failed; a
 * report hook sweeps what a crashed test left behind. Run from the repository root.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "netif.h"

#define FIX "tests/fixtures/netlink/"
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_TRACKED 32

/* ---- names and cleanup ------------------------------------------------------------------ */

static char nets[MAX_TRACKED][IFNAMSIZ];
static int n_nets;
static char links[MAX_TRACKED][IFNAMSIZ]; /* host-side links; a pod's go with its namespace */
static int n_links;

/* "tnif-<pid>-<n>": at most 15 characters for a 7-digit pid, so it fits IFNAMSIZ. */
static const char *nm(int n)
{
	static char names[64][IFNAMSIZ];

	cr_assert(n >= 0 && n < 64);
	if (!names[n][0])
		snprintf(names[n], IFNAMSIZ, "tnif-%d-%d", (int)getpid(), n);
	return names[n];
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

#define SH_OK(...)                                                                                 \
	do {                                                                                       \
		char cmd_[1024];                                                                   \
		snprintf(cmd_, sizeof(cmd_), __VA_ARGS__);                                         \
		cr_assert_eq(sh("%s", cmd_), 0, "failed: %s", cmd_);                               \
	} while (0)

/* The whole output of a shell command, malloc'd and NUL-terminated. */
static char *sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sh_out(const char *fmt, ...)
{
	char cmd[1024], *buf = NULL;
	size_t len = 0, n;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	cr_assert_not_null(f, "popen %s", cmd);
	do {
		buf = realloc(buf, len + 4097);
		cr_assert_not_null(buf);
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	cr_assert_eq(pclose(f), 0, "failed: %s", cmd);
	return buf;
}

static void netns_add(const char *name)
{
	cr_assert_lt(n_nets, MAX_TRACKED);
	snprintf(nets[n_nets++], IFNAMSIZ, "%s", name);
	SH_OK("ip netns add %s", name);
}

/* Remember a host-side link before the command that makes it, so a half-failed one goes too. */
static void link_track(const char *name)
{
	cr_assert_lt(n_links, MAX_TRACKED);
	snprintf(links[n_links++], IFNAMSIZ, "%s", name);
}

/* Links first: a veth deleted goes with its peer at once, a namespace's only when it is freed. */
static void tnif_cleanup(void)
{
	while (n_links)
		sh("ip link del %s 2>/dev/null", links[--n_links]);
	while (n_nets)
		sh("ip netns del %s 2>/dev/null", nets[--n_nets]);
}

/* Entries of dir whose names start with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += !strncmp(de->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

static int leftovers(void)
{
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "tnif-%d-", (int)getpid());
	return count_prefixed("/run/netns", prefix) + count_prefixed("/sys/class/net", prefix);
}

static void fini(void)
{
	tnif_cleanup();
	cr_expect_eq(leftovers(), 0, "tnif-%d-* namespaces or links left after cleanup",
		     (int)getpid());
}

TestSuite(netif, .fini = fini, .timeout = 60);

static int ns_open(const char *ns)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	return fd;
}

static uint64_t file_u64(const char *path)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	cr_assert_not_null(fgets(buf, sizeof(buf), f), "read %s", path);
	fclose(f);
	return strtoull(buf, NULL, 10);
}

static void file_write(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	fputs(s, f);
	cr_assert_eq(fclose(f), 0, "write %s: %s", path, strerror(errno));
}

static int host_ifindex(const char *dev)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/class/net/%s/ifindex", dev);
	return (int)file_u64(path);
}

/* IPv6 off before a link comes up: no router or listener solicitations to move counters. */
static void host_ipv6_off(const char *dev)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", dev);
	file_write(path, "1");
}

static void ns_ipv6_off(const char *ns)
{
	SH_OK("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
	      "net.ipv6.conf.default.disable_ipv6=1",
	      ns);
}

/* A number after "key": in ip -j output; dies when absent. */
static long json_int(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	cr_assert_not_null(p, "no %s in %s", key, json);
	return strtol(p + strlen(pat), NULL, 10);
}

/* ---- counters: sysfs as the truth --------------------------------------------------------- */

static const char *const stat_names[8] = { "rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
					   "tx_bytes", "tx_packets", "tx_errors", "tx_dropped" };

static void stats_arr(const struct netif_stats *s, uint64_t v[8])
{
	uint64_t a[8] = { s->rx_bytes, s->rx_packets, s->rx_errors, s->rx_dropped,
			  s->tx_bytes, s->tx_packets, s->tx_errors, s->tx_dropped };

	memcpy(v, a, sizeof(a));
}

/* One link's counters from sysfs; false when it is gone. */
static bool host_stats(const char *dev, uint64_t v[8])
{
	char path[PATH_MAX], buf[64];

	for (int i = 0; i < 8; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", dev, stat_names[i]);
		f = fopen(path, "r");
		if (!f)
			return false;
		if (!fgets(buf, sizeof(buf), f)) {
			fclose(f);
			return false;
		}
		fclose(f);
		v[i] = strtoull(buf, NULL, 10);
	}
	return true;
}

/* A pod link's counters: ip netns exec mounts a sysfs of the namespace. */
static void pod_stats(const char *ns, const char *dev, uint64_t v[8])
{
	char files[512] = "", *out, *p;
	size_t len = 0;

	for (int i = 0; i < 8; i++)
		len += snprintf(files + len, sizeof(files) - len, " %s", stat_names[i]);
	out = sh_out("ip netns exec %s sh -c 'cd /sys/class/net/%s/statistics && cat%s'", ns, dev,
		     files);
	p = out;
	for (int i = 0; i < 8; i++) {
		char *end;

		v[i] = strtoull(p, &end, 10);
		cr_assert_neq(end, p, "counters of %s in %s: %s", dev, ns, out);
		p = end;
	}
	free(out);
}

static void read_stats(const char *ns, const char *dev, uint64_t v[8])
{
	if (ns)
		pod_stats(ns, dev, v);
	else
		cr_assert(host_stats(dev, v), "no counters for %s", dev);
}

static void expect_stats(const struct netif_link *l, const uint64_t truth[8], const char *what)
{
	uint64_t got[8];

	stats_arr(&l->stats, got);
	for (int i = 0; i < 8; i++)
		cr_expect_eq(got[i], truth[i], "%s %s: netlink %llu, sysfs %llu", what,
			     stat_names[i], (unsigned long long)got[i],
			     (unsigned long long)truth[i]);
}

/* ---- traffic ---------------------------------------------------------------------------- */

/* Run fn(arg) in a child that joined namespace ns (NULL: stays here); its exit status 0. */
static void in_child(const char *ns, int (*fn)(const void *), const void *arg)
{
	int fd = ns ? ns_open(ns) : -1, st = 0;
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (fd >= 0 && setns(fd, CLONE_NEWNET))
			_exit(100);
		_exit(fn(arg));
	}
	if (fd >= 0)
		close(fd);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child in %s failed: status %#x",
		  ns ? ns : "host", st);
}

struct frames {
	const char *dev;
	int count, size;
	uint16_t proto; /* ethertype */
};

/*
 * Raw frames, so the counts are exact: no ARP, no IP. Broadcast, so the peer takes them in;
 * an ethertype nobody handles is counted as dropped there, ARP garbage is not.
 */
static int send_frames(const void *arg)
{
	const struct frames *f = arg;
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_halen = ETH_ALEN };
	unsigned char buf[1514];
	int fd;

	memset(to.sll_addr, 0xff, ETH_ALEN);
	to.sll_ifindex = (int)if_nametoindex(f->dev);
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0 || !to.sll_ifindex || f->size > (int)sizeof(buf))
		return 1;
	memset(buf, 0xa5, sizeof(buf));
	memset(buf, 0xff, ETH_ALEN);
	memcpy(buf + ETH_ALEN, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	buf[12] = f->proto >> 8;
	buf[13] = f->proto & 0xff;
	for (int i = 0; i < f->count; i++)
		if (sendto(fd, buf, f->size, 0, (struct sockaddr *)&to, sizeof(to)) != f->size)
			return 2;
	close(fd);
	return 0;
}

struct udp {
	const char *dst;
	int count;
};

static int send_udp(const void *arg)
{
	const struct udp *u = arg;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	char payload[64] = "tally netif test";
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || inet_pton(AF_INET, u->dst, &to.sin_addr) != 1)
		return 1;
	for (int i = 0; i < u->count; i++)
		if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to)) !=
		    sizeof(payload))
			return 2;
	close(fd);
	return 0;
}

/* ---- raw netlink, the test's own (captures; no code under test) -------------------------- */

struct msgs {
	struct nlmsghdr **v;
	size_t n;
};

static void msgs_free(struct msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i]);
	free(m->v);
	*m = (struct msgs){};
}

/* A copy of h in a buffer of exactly nlmsg_len bytes: ASan sees any read past its end. */
static struct nlmsghdr *msg_dup(const void *h, size_t len)
{
	struct nlmsghdr *c = malloc(len);

	cr_assert_not_null(c);
	memcpy(c, h, len);
	return c;
}

struct raw_open {
	int nsfd, group, fd;
};

static void *raw_open_run(void *arg)
{
	struct raw_open *o = arg;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	if (o->nsfd >= 0 && setns(o->nsfd, CLONE_NEWNET))
		return NULL;
	o->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (o->fd >= 0 && (bind(o->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
			   (o->group && setsockopt(o->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
						   &o->group, sizeof(o->group))))) {
		close(o->fd);
		o->fd = -1;
	}
	return NULL;
}

/* A route netlink socket in namespace ns (NULL: here), opened by a thread that moved there. */
static int raw_open(const char *ns, int group)
{
	struct raw_open o = { .nsfd = ns ? ns_open(ns) : -1, .group = group, .fd = -1 };
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, raw_open_run, &o), 0);
	pthread_join(t, NULL);
	if (o.nsfd >= 0)
		close(o.nsfd);
	cr_assert_geq(o.fd, 0, "netlink socket in %s", ns ? ns : "host");
	return o.fd;
}

static char rawbuf[1 << 16];

/* Append the messages of one datagram (waiting up to ms) to m; false on timeout. */
static bool raw_recv(int fd, struct msgs *m, int ms, bool *done)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct nlmsghdr *h;
	int n;

	if (poll(&p, 1, ms) != 1)
		return false;
	n = (int)recv(fd, rawbuf, sizeof(rawbuf), 0);
	cr_assert_gt(n, 0, "recv: %s", strerror(errno));
	for (h = (struct nlmsghdr *)rawbuf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
			if (done)
				*done = true;
			continue;
		}
		m->v = realloc(m->v, (m->n + 1) * sizeof(*m->v));
		cr_assert_not_null(m->v);
		m->v[m->n++] = msg_dup(h, h->nlmsg_len);
	}
	return true;
}

static void raw_dump(int fd, int type, int family, struct msgs *m)
{
	struct {
		struct nlmsghdr h;
		struct rtmsg r; /* ifinfomsg is longer: its tail is zero */
		char pad[4];
	} req = { .h = { .nlmsg_type = type, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	bool done = false;

	req.h.nlmsg_len =
		NLMSG_LENGTH(type == RTM_GETLINK ? sizeof(struct ifinfomsg) : sizeof(struct rtmsg));
	req.r.rtm_family = family;
	cr_assert_eq(send(fd, &req, req.h.nlmsg_len, 0), (ssize_t)req.h.nlmsg_len);
	while (!done)
		cr_assert(raw_recv(fd, m, 5000, &done), "dump timed out");
}

/*
 * The test's own attribute walk (to pick, cut and patch messages): offsets of the top-level
 * attributes after a fixed header of hdrlen bytes.
 */
static size_t attr_find(const struct nlmsghdr *h, size_t hdrlen, int type)
{
	size_t off = NLMSG_LENGTH(NLMSG_ALIGN(hdrlen));

	while (off + NLA_HDRLEN <= h->nlmsg_len) {
		const struct nlattr *a = (const void *)((const char *)h + off);

		cr_assert_geq(a->nla_len, NLA_HDRLEN);
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return off;
		off += NLA_ALIGN(a->nla_len);
	}
	return 0;
}

static const char *msg_ifname(const struct nlmsghdr *h)
{
	size_t off = attr_find(h, sizeof(struct ifinfomsg), IFLA_IFNAME);

	return off ? (const char *)h + off + NLA_HDRLEN : "";
}

static const struct nlmsghdr *msg_by_name(const struct msgs *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(msg_ifname(m->v[i]), name))
			return m->v[i];
	cr_assert_fail("no message for link %s", name);
	return NULL;
}

static const struct rtmsg *rtm(const struct nlmsghdr *h)
{
	return NLMSG_DATA(h);
}

static uint32_t route_u32(const struct nlmsghdr *h, int type)
{
	size_t off = attr_find(h, sizeof(struct rtmsg), type);
	uint32_t v = 0;

	if (off)
		memcpy(&v, (const char *)h + off + NLA_HDRLEN, sizeof(v));
	return v;
}

/* The RTM_NEWROUTE of a main/other-table route of this prefix length, oif (0: any). */
static const struct nlmsghdr *route_find(const struct msgs *m, int family, int dst_len,
					 uint32_t table, bool multipath)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct nlmsghdr *h = m->v[i];

		if (h->nlmsg_type != RTM_NEWROUTE || rtm(h)->rtm_family != family ||
		    rtm(h)->rtm_dst_len != dst_len || rtm(h)->rtm_type != RTN_UNICAST)
			continue;
		if (route_u32(h, RTA_TABLE) != table)
			continue;
		if (!!attr_find(h, sizeof(struct rtmsg), RTA_MULTIPATH) != multipath)
			continue;
		return h;
	}
	cr_assert_fail("no route family %d /%d table %u%s", family, dst_len, table,
		       multipath ? " multipath" : "");
	return NULL;
}

static void fixture_write(const char *dir, const char *name, const struct nlmsghdr *h)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(h, 1, h->nlmsg_len, f), h->nlmsg_len);
	cr_assert_eq(fclose(f), 0);
}

static struct nlmsghdr *fixture_load(const char *name)
{
	char path[PATH_MAX];
	struct nlmsghdr *h;
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), FIX "%s", name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "open %s: %s (run from the repository root)", path, strerror(errno));
	cr_assert_eq(fstat(fileno(f), &st), 0);
	cr_assert_geq(st.st_size, (off_t)sizeof(*h));
	h = malloc(st.st_size);
	cr_assert_not_null(h);
	cr_assert_eq(fread(h, 1, st.st_size, f), (size_t)st.st_size);
	fclose(f);
	cr_assert_eq(h->nlmsg_len, (uint32_t)st.st_size, "%s: one whole message per file", path);
	return h;
}

/* ---- the fixture scenario, live ------------------------------------------------------------ */

/*
 * Builds what tests/fixtures/netlink/ was captured from, then checks what the parsers make of
 * the kernel's own messages against what was built and against sysfs. With
 * TALLY_NETLINK_CAPTURE=DIR it also writes those messages there (see the fixtures' README).
 *
 * Pod namespace 1: lo; veth 3 (ifindex 20) whose peer 2 is in the host; bridge 4 (40); veth
 * pair 5 (30) and 6 (31) inside the pod. Raw frames make exact counters on 3 and 2.
 */
Test(netif, live_messages_match_scenario)
{
	const char *P = nm(1), *H = nm(2), *C = nm(3), *BR = nm(4), *A = nm(5), *B = nm(6);
	const char *capture = getenv("TALLY_NETLINK_CAPTURE");
	struct msgs pod = {}, host = {}, r4 = {}, r6 = {}, ev = {};
	const struct nlmsghdr *h_c, *h_h, *h_lo, *h_br, *h_a, *h_del = NULL;
	const struct nlmsghdr *rt_def4, *rt_mp4, *rt_t100, *rt_conn4, *rt_def6;
	uint64_t truth_c[8], truth_h[8];
	struct netif_link l;
	int fd, evfd, h_idx, oif;
	long nsid_c, nsid_h;
	char *js;

	netns_add(P);
	ns_ipv6_off(P);
	/*
	 * The pod knows the host as nsid 5 rather than the first free id, 0: a name for the host
	 * namespace (7, only a bind mount) to hand to ip netns set.
	 */
	cr_assert_lt(n_nets, MAX_TRACKED);
	snprintf(nets[n_nets++], IFNAMSIZ, "%s", nm(7));
	SH_OK("ip netns attach %s %d && ip -n %s netns set %s 5", nm(7), (int)getpid(), P, nm(7));
	link_track(H);
	SH_OK("ip -n %s link add %s index 20 type veth peer name %s netns %d", P, C, H,
	      (int)getpid());
	host_ipv6_off(H);
	SH_OK("ip -n %s link add %s index 40 type bridge", P, BR);
	SH_OK("ip -n %s link add %s index 30 type veth peer name %s index 31", P, A, B);
	SH_OK("ip link set %s up", H);
	SH_OK("ip -n %s link set lo up && ip -n %s link set %s up && ip -n %s link set %s up && "
	      "ip -n %s link set %s up",
	      P, P, C, P, A, P, B);

	/* pod -> host: 6 x 100 (4 dropped by the host, unknown type); host -> pod: 3 x 250. */
	in_child(P, send_frames, &(struct frames){ C, 4, 100, 0x88b5 });
	in_child(P, send_frames, &(struct frames){ C, 2, 100, ETH_P_ARP });
	in_child(NULL, send_frames, &(struct frames){ H, 1, 250, 0x88b5 });
	in_child(NULL, send_frames, &(struct frames){ H, 2, 250, ETH_P_ARP });
	/* Sent while the peer is down: the sender counts them as tx_dropped. */
	SH_OK("ip link set %s down", H);
	in_child(P, send_frames, &(struct frames){ C, 2, 100, 0x88b5 });
	SH_OK("ip link set %s up && ip -n %s link set %s down", H, P, C);
	in_child(NULL, send_frames, &(struct frames){ H, 5, 250, 0x88b5 });
	SH_OK("ip -n %s link set %s up", P, C);

	fd = raw_open(P, 0);
	raw_dump(fd, RTM_GETLINK, AF_UNSPEC, &pod);
	pod_stats(P, C, truth_c);
	close(fd);
	fd = raw_open(NULL, 0);
	raw_dump(fd, RTM_GETLINK, AF_UNSPEC, &host);
	close(fd);
	cr_assert(host_stats(H, truth_h));
	h_idx = host_ifindex(H);
	js = sh_out("ip -n %s -j link show %s", P, C);
	nsid_c = json_int(js, "link_netnsid");
	free(js);
	js = sh_out("ip -j link show %s", H);
	nsid_h = json_int(js, "link_netnsid");
	free(js);

	h_c = msg_by_name(&pod, C);
	cr_assert_eq(netif__parse_link(h_c, &l), 0);
	cr_expect_eq(l.ifindex, 20);
	cr_expect_str_eq(l.name, C);
	cr_expect_str_eq(l.kind, "veth");
	cr_expect_eq(l.link_ifindex, h_idx);
	cr_expect_eq(l.link_netnsid, nsid_c);
	cr_expect_eq(l.link_netnsid, 5);
	cr_expect(l.flags & IFF_UP);
	expect_stats(&l, truth_c, C);
	cr_expect_eq(l.stats.tx_packets, 6);
	cr_expect_eq(l.stats.tx_bytes, 600);
	cr_expect_eq(l.stats.rx_packets, 3);
	cr_expect_eq(l.stats.rx_bytes, 750);
	cr_expect_eq(l.stats.tx_dropped, 2);

	h_h = msg_by_name(&host, H);
	cr_assert_eq(netif__parse_link(h_h, &l), 0);
	cr_expect_eq(l.ifindex, h_idx);
	cr_expect_str_eq(l.kind, "veth");
	cr_expect_eq(l.link_ifindex, 20);
	cr_expect_eq(l.link_netnsid, nsid_h);
	expect_stats(&l, truth_h, H);
	cr_expect_eq(l.stats.rx_packets, 6);
	cr_expect_eq(l.stats.rx_bytes, 600);
	cr_expect_eq(l.stats.tx_packets, 3);
	cr_expect_eq(l.stats.tx_bytes, 750);
	cr_expect_eq(l.stats.tx_dropped, 5);

	h_lo = msg_by_name(&pod, "lo");
	cr_assert_eq(netif__parse_link(h_lo, &l), 0);
	cr_expect_eq(l.ifindex, 1);
	cr_expect_str_eq(l.kind, "");
	cr_expect_eq(l.link_ifindex, 0);
	cr_expect_eq(l.link_netnsid, -1);
	cr_expect_eq(l.flags & (IFF_LOOPBACK | IFF_UP), IFF_LOOPBACK | IFF_UP);

	h_br = msg_by_name(&pod, BR);
	cr_assert_eq(netif__parse_link(h_br, &l), 0);
	cr_expect_eq(l.ifindex, 40);
	cr_expect_str_eq(l.kind, "bridge");
	cr_expect_eq(l.link_ifindex, 0);
	cr_expect_eq(l.link_netnsid, -1);
	cr_expect_eq(l.flags & IFF_UP, 0);

	h_a = msg_by_name(&pod, A);
	cr_assert_eq(netif__parse_link(h_a, &l), 0);
	cr_expect_eq(l.ifindex, 30);
	cr_expect_str_eq(l.kind, "veth");
	cr_expect_eq(l.link_ifindex, 31, "a veth whose peer is in its own namespace");
	cr_expect_eq(l.link_netnsid, -1);

	/* Routes: IPv4 default, one in table 100, a multipath one, the connected one; IPv6. */
	SH_OK("ip -n %s addr add 203.0.113.2/24 dev %s", P, C);
	SH_OK("ip -n %s route add default via 203.0.113.1 dev %s", P, C);
	SH_OK("ip -n %s route add default dev %s table 100", P, C);
	SH_OK("ip -n %s route add default metric 300 nexthop dev %s nexthop dev %s", P, C, A);
	SH_OK("ip netns exec %s sysctl -qw net.ipv6.conf.%s.disable_ipv6=0", P, C);
	SH_OK("ip -n %s -6 route add default via fe80::1 dev %s", P, C);
	fd = raw_open(P, 0);
	raw_dump(fd, RTM_GETROUTE, AF_INET, &r4);
	raw_dump(fd, RTM_GETROUTE, AF_INET6, &r6);
	close(fd);
	rt_def4 = route_find(&r4, AF_INET, 0, RT_TABLE_MAIN, false);
	rt_mp4 = route_find(&r4, AF_INET, 0, RT_TABLE_MAIN, true);
	rt_t100 = route_find(&r4, AF_INET, 0, 100, false);
	rt_conn4 = route_find(&r4, AF_INET, 24, RT_TABLE_MAIN, false);
	rt_def6 = route_find(&r6, AF_INET6, 0, RT_TABLE_MAIN, false);
	oif = -1;
	cr_expect_eq(netif__parse_default_route(rt_def4, &oif), 1);
	cr_expect_eq(oif, 20);
	oif = -1;
	cr_expect_eq(netif__parse_default_route(rt_mp4, &oif), 1);
	cr_expect_eq(oif, 20, "first hop of a multipath default");
	cr_expect_eq(netif__parse_default_route(rt_t100, &oif), 0, "not the main table");
	cr_expect_eq(netif__parse_default_route(rt_conn4, &oif), 0, "not a default route");
	oif = -1;
	cr_expect_eq(netif__parse_default_route(rt_def6, &oif), 1);
	cr_expect_eq(oif, 20);

	/* RTM_DELLINK of a veth, from a listener in the pod. */
	evfd = raw_open(P, RTNLGRP_LINK);
	SH_OK("ip -n %s link del %s", P, A);
	for (int i = 0; i < 50 && !h_del; i++) {
		raw_recv(evfd, &ev, 100, NULL);
		for (size_t j = 0; j < ev.n; j++)
			if (ev.v[j]->nlmsg_type == RTM_DELLINK && !strcmp(msg_ifname(ev.v[j]), A))
				h_del = ev.v[j];
	}
	close(evfd);
	cr_assert_not_null(h_del, "no RTM_DELLINK for %s", A);
	cr_assert_eq(netif__parse_link(h_del, &l), 0);
	cr_expect_eq(l.ifindex, 30);
	cr_expect_str_eq(l.kind, "veth");
	cr_expect_eq(l.link_ifindex, 0, "the pair is unlinked before RTM_DELLINK is sent");

	if (capture) {
		static const char *const what[] = {
			"link-veth-pod.bin",	 "link-veth-host.bin",	 "link-lo.bin",
			"link-bridge.bin",	 "link-veth-samens.bin", "dellink-veth.bin",
			"route4-default.bin",	 "route4-multipath.bin", "route4-table100.bin",
			"route4-connected.bin", "route6-default.bin",
		};
		const struct nlmsghdr *msgs[] = { h_c,	 h_h,	  h_lo,	   h_br,     h_a,    h_del,
						  rt_def4, rt_mp4, rt_t100, rt_conn4, rt_def6 };

		for (size_t i = 0; i < N_ELEMS(what); i++)
			fixture_write(capture, what[i], msgs[i]);
		fprintf(stderr, "captured into %s: pid %d, host peer ifindex %d, nsid %ld/%ld\n",
			capture, (int)getpid(), h_idx, nsid_c, nsid_h);
		for (int i = 0; i < 8; i++)
			fprintf(stderr, "  %-10s pod %llu host %llu\n", stat_names[i],
				(unsigned long long)truth_c[i], (unsigned long long)truth_h[i]);
	}
	msgs_free(&pod);
	msgs_free(&host);
	msgs_free(&r4);
	msgs_free(&r6);
	msgs_free(&ev);
}

/* ---- parsers on the fixtures ----------------------------------------------------------- */

/*
 * What the kernel said when the fixtures were captured (see the README): pid 9776 ran the
 * scenario above; the host side's ifindex and nsid are what ip -j showed then.
 */
#define CAP_PID	  "9776"
#define CAP_HOSTIF 13
#define CAP_NSID_POD 5
#define CAP_NSID_HOST 0

static const struct {
	const char *file;
	int type;
	struct netif_link want;
} link_fixtures[] = {
	{ "link-veth-pod.bin", RTM_NEWLINK,
	  { .ifindex = 20, .name = "tnif-" CAP_PID "-3", .kind = "veth", .link_ifindex = CAP_HOSTIF,
	    .link_netnsid = CAP_NSID_POD, .flags = IFF_UP,
	    .stats = { .rx_bytes = 750, .rx_packets = 3, .rx_dropped = 1, .tx_bytes = 600,
		       .tx_packets = 6, .tx_dropped = 2 } } },
	{ "link-veth-host.bin", RTM_NEWLINK,
	  { .ifindex = CAP_HOSTIF, .name = "tnif-" CAP_PID "-2", .kind = "veth", .link_ifindex = 20,
	    .link_netnsid = CAP_NSID_HOST, .flags = IFF_UP,
	    .stats = { .rx_bytes = 600, .rx_packets = 6, .rx_dropped = 4, .tx_bytes = 750,
		       .tx_packets = 3, .tx_dropped = 5 } } },
	{ "link-lo.bin", RTM_NEWLINK,
	  { .ifindex = 1, .name = "lo", .kind = "", .link_netnsid = -1,
	    .flags = IFF_UP | IFF_LOOPBACK } },
	{ "link-bridge.bin", RTM_NEWLINK,
	  { .ifindex = 40, .name = "tnif-" CAP_PID "-4", .kind = "bridge", .link_netnsid = -1 } },
	{ "link-veth-samens.bin", RTM_NEWLINK,
	  { .ifindex = 30, .name = "tnif-" CAP_PID "-5", .kind = "veth", .link_ifindex = 31,
	    .link_netnsid = -1, .flags = IFF_UP } },
	{ "dellink-veth.bin", RTM_DELLINK,
	  { .ifindex = 30, .name = "tnif-" CAP_PID "-5", .kind = "veth", .link_netnsid = -1 } },
};

static const struct {
	const char *file;
	int ret, oif;
} route_fixtures[] = {
	{ "route4-default.bin", 1, 20 },  { "route4-multipath.bin", 1, 20 },
	{ "route4-table100.bin", 0, 0 },  { "route4-connected.bin", 0, 0 },
	{ "route6-default.bin", 1, 20 },
};

Test(netif, parse_link_fixtures)
{
	for (size_t i = 0; i < N_ELEMS(link_fixtures); i++) {
		const struct netif_link *w = &link_fixtures[i].want;
		struct nlmsghdr *h = fixture_load(link_fixtures[i].file);
		const char *f = link_fixtures[i].file;
		struct netif_link l;
		uint64_t got[8], want[8];

		cr_expect_eq(h->nlmsg_type, link_fixtures[i].type, "%s: message type", f);
		cr_assert_eq(netif__parse_link(h, &l), 0, "%s", f);
		cr_expect_eq(l.ifindex, w->ifindex, "%s: ifindex %d", f, l.ifindex);
		cr_expect_str_eq(l.name, w->name, "%s: name %s", f, l.name);
		cr_expect_str_eq(l.kind, w->kind, "%s: kind %s", f, l.kind);
		cr_expect_eq(l.link_ifindex, w->link_ifindex, "%s: link %d", f, l.link_ifindex);
		cr_expect_eq(l.link_netnsid, w->link_netnsid, "%s: netnsid %d", f, l.link_netnsid);
		cr_expect_eq(l.flags & (IFF_UP | IFF_LOOPBACK), w->flags, "%s: flags %#x", f,
			     l.flags);
		stats_arr(&l.stats, got);
		stats_arr(&w->stats, want);
		for (int j = 0; j < 8; j++)
			cr_expect_eq(got[j], want[j], "%s: %s %llu, want %llu", f, stat_names[j],
				     (unsigned long long)got[j], (unsigned long long)want[j]);
		cr_expect_eq(netif__parse_default_route(h, &(int){ 0 }), -ENOENT, "%s", f);
		free(h);
	}
}

Test(netif, parse_route_fixtures)
{
	for (size_t i = 0; i < N_ELEMS(route_fixtures); i++) {
		struct nlmsghdr *h = fixture_load(route_fixtures[i].file);
		struct netif_link l;
		int oif = 0;

		cr_expect_eq(netif__parse_default_route(h, &oif), route_fixtures[i].ret, "%s",
			     route_fixtures[i].file);
		if (route_fixtures[i].ret == 1)
			cr_expect_eq(oif, route_fixtures[i].oif, "%s: oif %d",
				     route_fixtures[i].file, oif);
		cr_expect_eq(netif__parse_link(h, &l), -ENOENT, "%s", route_fixtures[i].file);
		free(h);
	}
}

/* Whether len is a place a message can end whole: after its header or after an attribute. */
static bool is_boundary(const struct nlmsghdr *h, size_t hdrlen, size_t len)
{
	size_t off = NLMSG_LENGTH(NLMSG_ALIGN(hdrlen));

	if (len == off)
		return true;
	while (off + NLA_HDRLEN <= h->nlmsg_len) {
		const struct nlattr *a = (const void *)((const char *)h + off);

		/* The last attribute's padding, or part of it, is not needed to read it. */
		if (len >= off + a->nla_len && len <= off + NLA_ALIGN(a->nla_len))
			return true;
		off += NLA_ALIGN(a->nla_len);
	}
	return false;
}

/* Every cut of every fixture, in exact-size buffers: -EINVAL unless it ends between attributes. */
Test(netif, parse_cut_messages)
{
	for (size_t i = 0; i < N_ELEMS(link_fixtures) + N_ELEMS(route_fixtures); i++) {
		bool is_link = i < N_ELEMS(link_fixtures);
		const char *f = is_link ? link_fixtures[i].file
					: route_fixtures[i - N_ELEMS(link_fixtures)].file;
		size_t hdrlen = is_link ? sizeof(struct ifinfomsg) : sizeof(struct rtmsg);
		struct nlmsghdr *h = fixture_load(f);

		for (size_t len = sizeof(*h); len < h->nlmsg_len; len++) {
			struct nlmsghdr *c = msg_dup(h, len);
			struct netif_link l;
			int ret, oif;

			c->nlmsg_len = (uint32_t)len;
			ret = is_link ? netif__parse_link(c, &l)
				      : netif__parse_default_route(c, &oif);
			if (is_boundary(h, hdrlen, len) && len >= NLMSG_LENGTH(hdrlen))
				cr_expect_geq(ret, 0, "%s cut at %zu: %d", f, len, ret);
			else
				cr_expect_eq(ret, -EINVAL, "%s cut at %zu: %d", f, len, ret);
			free(c);
		}
		free(h);
	}
}

/* A fixture copy with one attribute's bytes patched, parsed: the result. */
static int patched(const char *file, size_t hdrlen, int type, void (*patch)(struct nlattr *a))
{
	struct nlmsghdr *h = fixture_load(file);
	size_t off = attr_find(h, hdrlen, type);
	struct netif_link l;
	int ret, oif;

	cr_assert_gt(off, 0, "%s has no attribute %d", file, type);
	patch((struct nlattr *)((char *)h + off));
	ret = hdrlen == sizeof(struct ifinfomsg) ? netif__parse_link(h, &l)
						 : netif__parse_default_route(h, &oif);
	free(h);
	return ret;
}

static void len_short(struct nlattr *a)
{
	a->nla_len = 2;
}

static void len_huge(struct nlattr *a)
{
	a->nla_len = 0xfff0;
}

static void len_minus4(struct nlattr *a)
{
	a->nla_len -= 4;
}

static void no_nul(struct nlattr *a)
{
	char *s = (char *)a + NLA_HDRLEN;

	memset(s, 'x', a->nla_len - NLA_HDRLEN);
}

Test(netif, parse_patched_messages)
{
	const char *veth = "link-veth-pod.bin", *r4 = "route4-default.bin";
	size_t ifi = sizeof(struct ifinfomsg), rt = sizeof(struct rtmsg);
	struct nlmsghdr *h;
	struct netif_link l;

	cr_expect_eq(patched(veth, ifi, IFLA_IFNAME, len_short), -EINVAL, "attribute < header");
	cr_expect_eq(patched(veth, ifi, IFLA_IFNAME, len_huge), -EINVAL, "attribute overruns");
	cr_expect_eq(patched(veth, ifi, IFLA_IFNAME, no_nul), -EINVAL, "name without NUL");
	cr_expect_eq(patched(veth, ifi, IFLA_LINKINFO, len_huge), -EINVAL);
	/* A shorter IFLA_LINK leaves 4 bytes the walk reads as an attribute of length 0. */
	cr_expect_eq(patched(veth, ifi, IFLA_LINK, len_minus4), -EINVAL);
	cr_expect_eq(patched(r4, rt, RTA_OIF, len_short), -EINVAL);
	cr_expect_eq(patched(r4, rt, RTA_OIF, len_huge), -EINVAL);

	/* Trailing bytes that cannot be an attribute. */
	h = fixture_load(veth);
	h = realloc(h, h->nlmsg_len + 4);
	cr_assert_not_null(h);
	memset((char *)h + h->nlmsg_len, 0, 4);
	h->nlmsg_len += 4;
	cr_expect_eq(netif__parse_link(h, &l), -EINVAL, "4 zero bytes after the attributes");
	free(h);

	/* Other message types, other families: not link messages. */
	h = fixture_load(veth);
	h->nlmsg_type = RTM_NEWADDR;
	cr_expect_eq(netif__parse_link(h, &l), -ENOENT);
	h->nlmsg_type = RTM_NEWLINK;
	((struct ifinfomsg *)NLMSG_DATA(h))->ifi_family = AF_BRIDGE;
	cr_expect_eq(netif__parse_link(h, &l), -ENOENT, "a bridge port notification");
	free(h);
}

/* ---- parsers on messages built here ----------------------------------------------------- */

/* An RTM_NEWLINK built with libnl, copied into an exact-size buffer. */
static struct nlmsghdr *built(void (*add)(struct nl_msg *m, void *ctx), void *ctx)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = 7, .ifi_flags = IFF_UP };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, 0);
	struct nlmsghdr *h;

	cr_assert_not_null(m);
	cr_assert_eq(nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO), 0);
	cr_assert_eq(nla_put_string(m, IFLA_IFNAME, "built0"), 0);
	if (add)
		add(m, ctx);
	h = msg_dup(nlmsg_hdr(m), nlmsg_hdr(m)->nlmsg_len);
	nlmsg_free(m);
	return h;
}

static int parse_built(void (*add)(struct nl_msg *m, void *ctx), void *ctx, struct netif_link *l)
{
	struct nlmsghdr *h = built(add, ctx);
	int ret = netif__parse_link(h, l);

	free(h);
	return ret;
}

static const struct rtnl_link_stats64 s64 = {
	.rx_packets = 11, .tx_packets = 12, .rx_bytes = 13ull << 32, .tx_bytes = 14,
	.rx_errors = 15,  .tx_errors = 16,  .rx_dropped = 17,	     .tx_dropped = 18,
	.multicast = 19,
};
static const struct rtnl_link_stats s32 = {
	.rx_packets = 21, .tx_packets = 22, .rx_bytes = 23,   .tx_bytes = 24,
	.rx_errors = 25,  .tx_errors = 26,  .rx_dropped = 27, .tx_dropped = 28,
};

static void add_s64(struct nl_msg *m, void *ctx)
{
	cr_assert_eq(nla_put(m, IFLA_STATS64, ctx ? *(int *)ctx : (int)sizeof(s64), &s64), 0);
}

static void add_s32(struct nl_msg *m, void *ctx)
{
	cr_assert_eq(nla_put(m, IFLA_STATS, ctx ? *(int *)ctx : (int)sizeof(s32), &s32), 0);
}

static void add_both(struct nl_msg *m, void *ctx)
{
	add_s32(m, NULL);
	add_s64(m, NULL);
}

Test(netif, stats_fields)
{
	struct netif_link l;
	int len;

	cr_assert_eq(parse_built(add_s64, NULL, &l), 0);
	cr_expect_eq(l.stats.rx_bytes, 13ull << 32);
	cr_expect_eq(l.stats.rx_packets, 11);
	cr_expect_eq(l.stats.rx_errors, 15);
	cr_expect_eq(l.stats.rx_dropped, 17);
	cr_expect_eq(l.stats.tx_bytes, 14);
	cr_expect_eq(l.stats.tx_packets, 12);
	cr_expect_eq(l.stats.tx_errors, 16);
	cr_expect_eq(l.stats.tx_dropped, 18);
	cr_expect_str_eq(l.name, "built0");
	cr_expect_eq(l.ifindex, 7);

	cr_assert_eq(parse_built(add_s32, NULL, &l), 0, "IFLA_STATS alone: the 32-bit fallback");
	cr_expect_eq(l.stats.rx_bytes, 23);
	cr_expect_eq(l.stats.rx_packets, 21);
	cr_expect_eq(l.stats.rx_errors, 25);
	cr_expect_eq(l.stats.rx_dropped, 27);
	cr_expect_eq(l.stats.tx_bytes, 24);
	cr_expect_eq(l.stats.tx_packets, 22);
	cr_expect_eq(l.stats.tx_errors, 26);
	cr_expect_eq(l.stats.tx_dropped, 28);

	cr_assert_eq(parse_built(add_both, NULL, &l), 0);
	cr_expect_eq(l.stats.rx_packets, 11, "IFLA_STATS64 wins over IFLA_STATS");

	cr_assert_eq(parse_built(NULL, NULL, &l), 0);
	cr_expect_eq(l.stats.rx_bytes + l.stats.tx_packets, 0, "no counters: zeros");
	cr_expect_str_eq(l.kind, "");
	cr_expect_eq(l.link_netnsid, -1);

	/* Older, shorter structs are fine down to the eight counters read; shorter is not. */
	len = 8 * 8;
	cr_expect_eq(parse_built(add_s64, &len, &l), 0);
	cr_expect_eq(l.stats.tx_dropped, 18);
	len = 7 * 8;
	cr_expect_eq(parse_built(add_s64, &len, &l), -EINVAL);
	len = 7 * 4;
	cr_expect_eq(parse_built(add_s32, &len, &l), -EINVAL);
}

static void add_str(struct nl_msg *m, void *ctx)
{
	const char *const *kv = ctx; /* { "name" or "kind", value, length or NULL } */
	size_t len = kv[2] ? strtoul(kv[2], NULL, 10) : strlen(kv[1]) + 1;

	if (!strcmp(kv[0], "name")) {
		cr_assert_eq(nla_put(m, IFLA_IFNAME, len, kv[1]), 0);
	} else {
		struct nlattr *nest = nla_nest_start(m, IFLA_LINKINFO);

		cr_assert_eq(nla_put(m, IFLA_INFO_KIND, len, kv[1]), 0);
		nla_nest_end(m, nest);
	}
}

static void add_u32(struct nl_msg *m, void *ctx)
{
	const int *tl = ctx; /* { type, payload length } */
	uint32_t v = 0xfffffffe;

	cr_assert_eq(nla_put(m, tl[0], tl[1], &v), 0);
}

Test(netif, strings_and_numbers)
{
	struct netif_link l;

	/* The last IFLA_IFNAME wins (as in the kernel's own parse): built0 is replaced. */
	cr_expect_eq(parse_built(add_str, (const char *[]){ "name", "a:b c\x7f\xc3", NULL }, &l),
		     0);
	cr_expect_str_eq(l.name, "a:b c\x7f\xc3", "any bytes but NUL and '/'");
	cr_expect_eq(parse_built(add_str, (const char *[]){ "name", "fifteen-chars-x", NULL }, &l),
		     0);
	cr_expect_str_eq(l.name, "fifteen-chars-x");
	cr_expect_eq(parse_built(add_str, (const char *[]){ "name", "sixteen-chars-xy", NULL }, &l),
		     -EINVAL, "longer than IFNAMSIZ");
	cr_expect_eq(parse_built(add_str, (const char *[]){ "name", "", "0" }, &l), -EINVAL);
	cr_expect_eq(parse_built(add_str, (const char *[]){ "kind", "veth", NULL }, &l), 0);
	cr_expect_str_eq(l.kind, "veth");
	cr_expect_eq(
		parse_built(add_str, (const char *[]){ "kind", "a-kind-of-twenty-one", NULL }, &l),
		0);
	cr_expect_str_eq(l.kind, "a-kind-of-twent", "a long kind is cut, not refused");
	cr_expect_eq(parse_built(add_str, (const char *[]){ "kind", "veth", "4" }, &l), -EINVAL,
		     "kind without NUL");

	cr_expect_eq(parse_built(add_u32, (int[]){ IFLA_LINK, 4 }, &l), 0);
	cr_expect_eq(l.link_ifindex, (int)0xfffffffe);
	cr_expect_eq(parse_built(add_u32, (int[]){ IFLA_LINK_NETNSID, 4 }, &l), 0);
	cr_expect_eq(l.link_netnsid, -2);
	cr_expect_eq(parse_built(add_u32, (int[]){ IFLA_LINK, 2 }, &l), -EINVAL);
	cr_expect_eq(parse_built(add_u32, (int[]){ IFLA_LINK_NETNSID, 0 }, &l), -EINVAL);
}

/* An RTM_NEWROUTE built here: family, prefix length, rtm_table, attributes added by add. */
static int route_built(int family, int dst_len, int table, int type,
		       void (*add)(struct nl_msg *m, void *ctx), void *ctx, int *oif)
{
	struct rtmsg r = { .rtm_family = family, .rtm_dst_len = dst_len, .rtm_table = table,
			   .rtm_type = type };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWROUTE, 0);
	struct nlmsghdr *h;
	int ret;

	cr_assert_not_null(m);
	cr_assert_eq(nlmsg_append(m, &r, sizeof(r), NLMSG_ALIGNTO), 0);
	if (add)
		add(m, ctx);
	h = msg_dup(nlmsg_hdr(m), nlmsg_hdr(m)->nlmsg_len);
	nlmsg_free(m);
	ret = netif__parse_default_route(h, oif);
	free(h);
	return ret;
}

static void add_oif(struct nl_msg *m, void *ctx)
{
	nla_put_u32(m, RTA_OIF, 5);
	if (ctx)
		nla_put_u32(m, RTA_TABLE, *(uint32_t *)ctx);
}

static void add_multipath(struct nl_msg *m, void *ctx)
{
	struct rtnexthop nh[2] = { { .rtnh_len = sizeof(nh[0]), .rtnh_ifindex = 8 },
				   { .rtnh_len = sizeof(nh[0]), .rtnh_ifindex = 9 } };

	if (ctx)
		nh[0].rtnh_len = *(int *)ctx;
	nla_put(m, RTA_MULTIPATH, sizeof(nh), nh);
}

Test(netif, default_route_rules)
{
	uint32_t main_table = RT_TABLE_MAIN, big = 1000;
	int oif = 0;

	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_MAIN, RTN_UNICAST, add_oif, NULL, &oif), 1);
	cr_expect_eq(oif, 5);
	cr_expect_eq(route_built(AF_INET6, 0, RT_TABLE_MAIN, RTN_UNICAST, add_oif, NULL, &oif), 1);
	cr_expect_eq(route_built(AF_INET, 8, RT_TABLE_MAIN, RTN_UNICAST, add_oif, NULL, &oif), 0);
	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_LOCAL, RTN_UNICAST, add_oif, NULL, &oif), 0);
	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_MAIN, RTN_BLACKHOLE, NULL, NULL, &oif), 0);
	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_MAIN, RTN_UNICAST, NULL, NULL, &oif), 0,
		     "no output device");
	cr_expect_eq(route_built(AF_BRIDGE, 0, RT_TABLE_MAIN, RTN_UNICAST, add_oif, NULL, &oif),
		     0);
	/* RTA_TABLE overrides the 8-bit rtm_table, both ways. */
	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_COMPAT, RTN_UNICAST, add_oif, &main_table,
				 &oif),
		     1);
	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_MAIN, RTN_UNICAST, add_oif, &big, &oif), 0);
	oif = 0;
	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_MAIN, RTN_UNICAST, add_multipath, NULL,
				 &oif),
		     1);
	cr_expect_eq(oif, 8, "the first hop");
	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_MAIN, RTN_UNICAST, add_multipath,
				 &(int){ 100 }, &oif),
		     -EINVAL, "a hop longer than RTA_MULTIPATH");
	cr_expect_eq(route_built(AF_INET, 0, RT_TABLE_MAIN, RTN_UNICAST, add_multipath, &(int){ 4 },
				 &oif),
		     -EINVAL, "a hop shorter than its header");
}

/* ---- netif__pick_default --------------------------------------------------------------- */

Test(netif, pick_default)
{
	struct netif_link v[] = {
		{ .ifindex = 1, .name = "lo", .flags = IFF_LOOPBACK | IFF_UP },
		{ .ifindex = 3, .name = "net1", .flags = IFF_UP },
		{ .ifindex = 4, .name = "eth0", .flags = IFF_UP },
		{ .ifindex = 5, .name = "net2", .flags = IFF_UP },
	};

	cr_expect_eq(netif__pick_default(v, 4, 5), 3, "the default route's device wins over eth0");
	cr_expect_eq(netif__pick_default(v, 4, 0), 2, "eth0 without a default route");
	cr_expect_eq(netif__pick_default(v, 4, 99), 2, "a route device not listed: eth0");
	cr_expect_eq(netif__pick_default(v, 4, 1), 0, "the route's device even when loopback");
	cr_expect_eq(netif__pick_default(v, 2, 0), 1, "first non-loopback");
	cr_expect_eq(netif__pick_default(v, 1, 0), -1, "only lo");
	cr_expect_eq(netif__pick_default(v, 0, 0), -1, "nothing");
	cr_expect_eq(netif__pick_default(NULL, 0, 3), -1);
}

/* ---- sockets, live ---------------------------------------------------------------------- */

static uint64_t ns_ino(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	return st.st_ino;
}

static const struct netif_link *by_name(const struct netif_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return &l->v[i];
	cr_assert_fail("no link %s", name);
	return NULL;
}

/*
 * A pod: veth 3 with an address and the default route, its peer 2 in the host with the other
 * address; veth "eth0" with no route, peer 4. UDP from the pod makes traffic both ways (ARP,
 * ICMP port unreachable). Truth: sysfs of the host, ip netns exec's sysfs of the pod.
 */
Test(netif, inspect_namespace)
{
	const char *P = nm(1), *H1 = nm(2), *C = nm(3), *H2 = nm(4);
	struct netns_info info = {};
	struct netif_list host = {};
	struct netif_sock *s;
	uint64_t self_before, before[4][8], after[4][8];
	const struct netif_link *c, *e, *lo, *hl;
	char addr_h[32], addr_p[32], path[PATH_MAX];
	int sub = (int)(getpid() % 16384), fd, tries;
	long nsid;
	char *out;

	/* A /30 of 198.18.0.0/15 (benchmarking, not routed) per pid: tests run side by side. */
	snprintf(addr_h, sizeof(addr_h), "198.18.%d.%d", sub >> 6, (sub & 63) * 4 + 1);
	snprintf(addr_p, sizeof(addr_p), "198.18.%d.%d", sub >> 6, (sub & 63) * 4 + 2);
	netns_add(P);
	ns_ipv6_off(P);
	link_track(H1);
	SH_OK("ip -n %s link add %s type veth peer name %s netns %d", P, C, H1, (int)getpid());
	link_track(H2);
	SH_OK("ip -n %s link add eth0 type veth peer name %s netns %d", P, H2, (int)getpid());
	host_ipv6_off(H1);
	host_ipv6_off(H2);
	SH_OK("ip addr add %s/30 dev %s && ip link set %s up && ip link set %s up", addr_h, H1, H1,
	      H2);
	SH_OK("ip -n %s link set lo up && ip -n %s link set %s up && ip -n %s link set eth0 up", P,
	      P, C, P);
	SH_OK("ip -n %s addr add %s/30 dev %s && ip -n %s route add default via %s dev %s", P,
	      addr_p, C, P, addr_h, C);
	in_child(P, send_udp, &(struct udp){ addr_h, 5 });

	self_before = ns_ino("/proc/thread-self/ns/net");
	fd = ns_open(P);
	s = netif_sock__new();
	cr_assert_not_null(s);
	/* Replies and ARP may trail the send: compare once the counters stand still. */
	for (tries = 0; tries < 50; tries++) {
		const char *names[4] = { C, "eth0", H1, H2 };

		for (int i = 0; i < 4; i++)
			read_stats(i < 2 ? P : NULL, names[i], before[i]);
		cr_assert_eq(netns__inspect(fd, &info), 0);
		cr_assert_eq(netif_sock__dump_links(s, &host), 0);
		for (int i = 0; i < 4; i++)
			read_stats(i < 2 ? P : NULL, names[i], after[i]);
		if (!memcmp(before, after, sizeof(before)))
			break;
		usleep(100000);
	}
	cr_assert_lt(tries, 50, "counters never stood still");
	cr_expect_eq(ns_ino("/proc/thread-self/ns/net"), self_before,
		     "the calling thread stays in its namespace");

	snprintf(path, sizeof(path), "/run/netns/%s", P);
	cr_expect_eq(info.ns_ino, ns_ino(path));
	cr_expect_eq(info.links.n, 3, "lo, %s, eth0", C);
	lo = by_name(&info.links, "lo");
	c = by_name(&info.links, C);
	e = by_name(&info.links, "eth0");
	cr_assert_geq(info.default_idx, 0);
	cr_expect_str_eq(info.links.v[info.default_idx].name, C, "the route's device, not eth0");
	cr_expect_str_eq(c->kind, "veth");
	cr_expect_str_eq(e->kind, "veth");
	cr_expect_str_eq(lo->kind, "");

	/* The pod knows only the host: its one nsid is the host's. */
	out = sh_out("ip -n %s -j link show %s", P, C);
	nsid = json_int(out, "link_netnsid");
	free(out);
	out = sh_out("ip -n %s -j netns list-id", P);
	cr_expect_eq(json_int(out, "nsid"), nsid);
	cr_expect_null(strstr(strstr(out, "nsid") + 1, "nsid"), "one nsid: %s", out);
	free(out);
	cr_expect_eq(info.host_nsid, nsid);
	cr_expect_eq(c->link_netnsid, nsid);
	cr_expect_eq(e->link_netnsid, nsid);
	cr_expect_eq(c->link_ifindex, host_ifindex(H1));
	cr_expect_eq(e->link_ifindex, host_ifindex(H2));

	cr_expect_eq(netif__host_peer(&info, c, &host), host_ifindex(H1));
	cr_expect_eq(netif__host_peer(&info, e, &host), host_ifindex(H2));
	cr_expect_eq(netif__host_peer(&info, lo, &host), 0);
	hl = netif_list__find(&host, host_ifindex(H1));
	cr_assert_not_null(hl);
	cr_expect_str_eq(hl->name, H1);
	cr_expect_eq(hl->link_ifindex, c->ifindex);

	expect_stats(c, before[0], C);
	expect_stats(e, before[1], "eth0");
	expect_stats(hl, before[2], H1);
	expect_stats(netif_list__find(&host, host_ifindex(H2)), before[3], H2);
	cr_expect_geq(c->stats.tx_packets, 5, "the UDP sent");
	cr_expect_gt(c->stats.rx_packets, 0, "replies");

	netns_info__free(&info);
	cr_expect_eq(info.links.n, 0);
	netif_list__free(&host);
	netif_sock__free(s);
	close(fd);
}

/*
 * The numbers of a host peer without being one: pod A's veth x (ifindex 50) leads to ifindex
 * Ih in namespace B, and the host's veth Ih leads to ifindex 50 in B. Only the nsid tells them
 * apart.
 */
Test(netif, host_peer_needs_the_host_namespace)
{
	const char *A = nm(1), *B = nm(2), *H = nm(3), *BH = nm(4), *X = nm(5), *Y = nm(6);
	struct netns_info ia = {}, ib = {};
	struct netif_list host = {};
	struct netif_sock *s;
	const struct netif_link *x, *bh, *h;
	int fa, fb, ih;

	netns_add(A);
	netns_add(B);
	link_track(H);
	SH_OK("ip -n %s link add %s index 50 type veth peer name %s netns %d", B, BH, H,
	      (int)getpid());
	ih = host_ifindex(H);
	SH_OK("ip -n %s link add %s index 50 type veth peer name %s index %d netns %s", A, X, Y, ih,
	      B);
	s = netif_sock__new();
	cr_assert_not_null(s);
	cr_assert_eq(netif_sock__dump_links(s, &host), 0);
	fa = ns_open(A);
	fb = ns_open(B);
	cr_assert_eq(netns__inspect(fa, &ia), 0);
	cr_assert_eq(netns__inspect(fb, &ib), 0);

	x = by_name(&ia.links, X);
	h = netif_list__find(&host, ih);
	cr_assert_not_null(h);
	/* The trap is set: every number matches. */
	cr_assert_eq(x->ifindex, 50);
	cr_assert_eq(x->link_ifindex, ih);
	cr_assert_str_eq(h->kind, "veth");
	cr_assert_eq(h->link_ifindex, 50);
	cr_expect_neq(x->link_netnsid, ia.host_nsid);
	cr_expect_eq(netif__host_peer(&ia, x, &host), 0, "peer in a third namespace");

	bh = by_name(&ib.links, BH);
	cr_expect_eq(netif__host_peer(&ib, bh, &host), ih, "the real host peer");
	cr_expect_eq(netif__host_peer(&ib, by_name(&ib.links, Y), &host), 0);

	netns_info__free(&ia);
	netns_info__free(&ib);
	netif_list__free(&host);
	netif_sock__free(s);
	close(fa);
	close(fb);
}

/* Every host link against sysfs: counters read before and after bracket the dump's. */
Test(netif, host_dump_matches_sysfs)
{
	const char *H = nm(1), *P = nm(2), *C = nm(3);
	struct netif_list l = {};
	struct netif_sock *s;
	size_t n_first, checked = 0;
	const struct netif_link *h;

	netns_add(P);
	link_track(H);
	SH_OK("ip -n %s link add %s type veth peer name %s netns %d", P, C, H, (int)getpid());
	s = netif_sock__new();
	cr_assert_not_null(s);
	cr_assert_eq(netif_sock__dump_links(s, &l), 0);
	n_first = l.n;
	cr_assert_eq(netif_sock__dump_links(s, &l), 0);
	cr_expect_eq(l.n, n_first, "the list is reused, not appended to");
	for (size_t i = 1; i < l.n; i++)
		cr_expect_lt(l.v[i - 1].ifindex, l.v[i].ifindex, "sorted by ifindex");

	for (int round = 0; round < 2; round++) {
		uint64_t (*before)[8] = calloc(l.n, sizeof(*before));
		uint64_t (*after)[8] = calloc(l.n, sizeof(*after));
		bool *ok = calloc(l.n, sizeof(*ok));

		cr_assert(before && after && ok);
		for (size_t i = 0; i < l.n; i++)
			ok[i] = host_stats(l.v[i].name, before[i]);
		cr_assert_eq(netif_sock__dump_links(s, &l), 0);
		for (size_t i = 0; i < l.n && i < n_first; i++) {
			uint64_t got[8];

			if (!ok[i] || !host_stats(l.v[i].name, after[i]))
				continue; /* a link of a test running alongside, gone */
			checked++;
			cr_expect_eq(l.v[i].ifindex, host_ifindex(l.v[i].name));
			stats_arr(&l.v[i].stats, got);
			for (int j = 0; j < 8; j++)
				cr_expect(before[i][j] <= got[j] && got[j] <= after[i][j],
					  "%s %s: sysfs %llu..%llu, netlink %llu", l.v[i].name,
					  stat_names[j], (unsigned long long)before[i][j],
					  (unsigned long long)after[i][j],
					  (unsigned long long)got[j]);
		}
		free(before);
		free(after);
		free(ok);
	}
	cr_expect_gt(checked, 2);
	h = netif_list__find(&l, host_ifindex(H));
	cr_assert_not_null(h);
	cr_expect_str_eq(h->name, H);
	cr_expect_str_eq(h->kind, "veth");
	cr_expect_geq(h->link_netnsid, 0);
	cr_expect_eq(netif_list__find(&l, 0), NULL);
	cr_expect_eq(netif_list__find(&l, INT32_MAX), NULL);
	netif_list__free(&l);
	netif_sock__free(s);
}

/*
 * The per-tick refresh: one RTM_GETSTATS dump updates the counters of a list from a link dump
 * (equal to sysfs for a quiet pair), drops links that went, and asks for a full dump when it
 * cannot do the job (empty list, a link the list lacks).
 */
Test(netif, stats_dump_refreshes_and_drops)
{
	const char *H = nm(1), *P = nm(2), *C = nm(3), *H2 = nm(4), *C2 = nm(5);
	struct netif_list l = {};
	const struct netif_link *h;
	struct netif_sock *s;
	uint64_t want[8], got[8];
	int idx, idx2;

	s = netif_sock__new();
	cr_assert_not_null(s);
	cr_expect_eq(netif_sock__dump_stats(s, &l), -EAGAIN, "an empty list needs a link dump");
	netns_add(P);
	link_track(H);
	link_track(H2);
	SH_OK("ip -n %s link add %s type veth peer name %s netns %d", P, C, H, (int)getpid());
	SH_OK("ip -n %s link add %s type veth peer name %s netns %d", P, C2, H2, (int)getpid());
	SH_OK("ip link set %s up && ip -n %s link set %s up", H, P, C);
	cr_assert_eq(netif_sock__dump_links(s, &l), 0);
	idx = host_ifindex(H);
	idx2 = host_ifindex(H2);
	/* Traffic after the link dump: only the stats dump can show it. IPv6 off: quiet after. */
	SH_OK("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1 && ip netns exec %s sysctl -qw "
	      "net.ipv6.conf.%s.disable_ipv6=1",
	      H, P, C);
	SH_OK("ip addr add 198.18.250.1/30 dev %s && ip -n %s addr add 198.18.250.2/30 dev %s", H,
	      P, C);
	SH_OK("ip neigh replace 198.18.250.2 lladdr 02:00:00:00:00:02 dev %s nud permanent", H);
	SH_OK("python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
	      "[s.sendto(b\"x\" * 300, (\"198.18.250.2\", 9)) for _ in range(7)]'");
	SH_OK("ip link del %s", H2);
	cr_assert_eq(netif_sock__dump_stats(s, &l), 0);
	cr_expect_null(netif_list__find(&l, idx2), "a link that went stays in the list");
	h = netif_list__find(&l, idx);
	cr_assert_not_null(h);
	cr_assert(host_stats(H, want));
	stats_arr(&h->stats, got);
	for (int j = 0; j < 8; j++)
		cr_expect_eq(got[j], want[j], "%s %s: sysfs %llu, stats dump %llu", H, stat_names[j],
			     (unsigned long long)want[j], (unsigned long long)got[j]);
	cr_expect_geq(got[4], 7ull * (300 + 28 + 14), "the datagrams sent after the link dump");
	/* A link the list lacks: only a link dump can describe it. */
	l.n--;
	memmove(&l.v[0], &l.v[1], l.n * sizeof(l.v[0]));
	cr_expect_eq(netif_sock__dump_stats(s, &l), -EAGAIN);
	netif_list__free(&l);
	netif_sock__free(s);
}

/* The host's default route device, from /proc/net/route (the main table) or ipv6_route. */
static int proc_default_oif(void)
{
	char line[512], iface[IFNAMSIZ + 1], best[IFNAMSIZ + 1] = "";
	unsigned long dst, gw, flags, mask, metric, best_metric = ~0ul;
	FILE *f = fopen("/proc/net/route", "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%16s %lx %lx %lx %*d %*d %lu %lx", iface, &dst, &gw, &flags,
			   &metric, &mask) == 6 &&
		    !dst && !mask && (flags & 1) && metric < best_metric) {
			best_metric = metric;
			strcpy(best, iface);
		}
	fclose(f);
	if (!best[0]) {
		char d[33], dev[IFNAMSIZ + 1];
		unsigned plen;

		f = fopen("/proc/net/ipv6_route", "r");
		cr_assert_not_null(f);
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "%32s %x %*s %*s %*s %lx %*s %*s %lx %16s", d, &plen,
				   &metric, &flags, dev) == 5 &&
			    !plen && strspn(d, "0") == 32 && (flags & 1) && strcmp(dev, "lo") &&
			    metric < best_metric) {
				best_metric = metric;
				strcpy(best, dev);
			}
		fclose(f);
	}
	return best[0] ? host_ifindex(best) : 0;
}

Test(netif, default_oif)
{
	const char *P = nm(1), *H1 = nm(2), *H2 = nm(3), *X = nm(4), *Y = nm(5);
	struct netif_sock *s = netif_sock__new(), *p;
	int oif = -1, fd;

	cr_assert_not_null(s);
	cr_assert_eq(netif_sock__default_oif(s, &oif), 0);
	cr_expect_eq(oif, proc_default_oif(), "the host's");
	netif_sock__free(s);

	netns_add(P);
	link_track(H1);
	SH_OK("ip -n %s link add %s index 10 type veth peer name %s netns %d", P, X, H1,
	      (int)getpid());
	link_track(H2);
	SH_OK("ip -n %s link add %s index 11 type veth peer name %s netns %d", P, Y, H2,
	      (int)getpid());
	SH_OK("ip -n %s link set %s up && ip -n %s link set %s up", P, X, P, Y);
	fd = ns_open(P);
	p = netif_sock__new_in(fd);
	cr_assert_not_null(p, "socket in %s: %s", P, strerror(errno));
	close(fd);

	cr_assert_eq(netif_sock__default_oif(p, &oif), 0);
	cr_expect_eq(oif, 0, "no default route");
	SH_OK("ip -n %s -6 route add default dev %s", P, Y);
	cr_assert_eq(netif_sock__default_oif(p, &oif), 0);
	cr_expect_eq(oif, 11, "IPv6 when there is no IPv4 default");
	SH_OK("ip -n %s route add default dev %s metric 100", P, X);
	cr_assert_eq(netif_sock__default_oif(p, &oif), 0);
	cr_expect_eq(oif, 10, "IPv4 first");
	SH_OK("ip -n %s route add default dev %s metric 50", P, Y);
	cr_assert_eq(netif_sock__default_oif(p, &oif), 0);
	cr_expect_eq(oif, 11, "the lowest metric");
	SH_OK("ip -n %s route add default dev %s table 7", P, X);
	SH_OK("ip -n %s route del default dev %s metric 50", P, Y);
	cr_assert_eq(netif_sock__default_oif(p, &oif), 0);
	cr_expect_eq(oif, 10, "other tables do not count");
	netif_sock__free(p);
}

Test(netif, inspect_refuses_what_is_not_a_netns)
{
	struct netns_info i = { .default_idx = 5 };
	int fd;

	cr_expect_eq(netns__inspect(-1, &i), -EBADF);
	cr_expect_eq(i.default_idx, -1);
	fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_expect_eq(netns__inspect(fd, &i), -EINVAL, "another kind of namespace");
	close(fd);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_expect_eq(netns__inspect(fd, &i), -EINVAL, "not a namespace");
	close(fd);
	cr_expect_eq(i.links.n, 0);
	errno = 0;
	cr_expect_null(netif_sock__new_in(-1));
	cr_expect_eq(errno, EBADF);
	netns_info__free(&i);
}

/* ---- events ------------------------------------------------------------------------------ */

struct seen {
	const char *a, *b;
	struct netif_link new_a, new_b;
	bool got_new_a, got_new_b, del_a, del_b;
	int calls;
};

static void on_link(const struct netif_link *l, bool del, void *ctx)
{
	struct seen *s = ctx;

	s->calls++;
	if (!strcmp(l->name, s->a)) {
		if (del)
			s->del_a = true;
		else
			s->new_a = *l, s->got_new_a = true;
	} else if (!strcmp(l->name, s->b)) {
		if (del)
			s->del_b = true;
		else
			s->new_b = *l, s->got_new_b = true;
	}
}

static bool wait_for(struct netif_events *e, struct seen *s, bool *a, bool *b)
{
	struct pollfd p = { .fd = netif_events__fd(e), .events = POLLIN };

	for (int i = 0; i < 50 && !(*a && *b); i++) {
		poll(&p, 1, 100);
		cr_assert_eq(netif_events__read(e, on_link, s), 0);
	}
	return *a && *b;
}

Test(netif, events_follow_veths)
{
	struct netif_events *e = netif_events__new();
	struct seen s = { .a = nm(1), .b = nm(2) };
	int fl;

	cr_assert_not_null(e);
	fl = fcntl(netif_events__fd(e), F_GETFL);
	cr_expect(fl & O_NONBLOCK);
	cr_expect_eq(netif_events__read(e, on_link, &s), 0, "nothing queued: returns at once");
	link_track(s.a);
	SH_OK("ip link add %s type veth peer name %s", s.a, s.b);
	cr_assert(wait_for(e, &s, &s.got_new_a, &s.got_new_b), "RTM_NEWLINK for both ends");
	cr_expect_str_eq(s.new_a.kind, "veth");
	cr_expect_str_eq(s.new_b.kind, "veth");
	cr_expect_eq(s.new_a.ifindex, host_ifindex(s.a));
	cr_expect_eq(s.new_b.ifindex, host_ifindex(s.b));
	/*
	 * The peer is registered, and notified, before the pair is tied: its first RTM_NEWLINK
	 * has no peer. The device named first is notified once more after, with it.
	 */
	cr_expect_eq(s.new_a.link_ifindex, host_ifindex(s.b));
	cr_expect(s.new_b.link_ifindex == 0 || s.new_b.link_ifindex == host_ifindex(s.a),
		  "peer's link %d", s.new_b.link_ifindex);
	cr_expect_eq(s.new_a.link_netnsid, -1);
	cr_expect(!s.del_a && !s.del_b);
	SH_OK("ip link del %s", s.a);
	cr_assert(wait_for(e, &s, &s.del_a, &s.del_b), "RTM_DELLINK for both ends");
	netif_events__free(e);
}

Test(netif, events_overflow_says_enobufs)
{
	struct netif_events *e = netif_events__new();
	struct seen s = { .a = nm(1), .b = nm(2) };
	int small = 1, ret = 0;

	cr_assert_not_null(e);
	/* The kernel rounds this up to its minimum, a couple of messages. */
	cr_assert_eq(setsockopt(netif_events__fd(e), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)),
		     0);
	link_track(s.a);
	for (int i = 0; i < 4; i++)
		SH_OK("ip link add %s type veth peer name %s && ip link del %s", s.a, s.b, s.a);
	ret = netif_events__read(e, on_link, &s);
	cr_expect_eq(ret, -ENOBUFS, "read: %d", ret);
	/* Then it carries on with what is queued after the loss (with room for it now). */
	small = 1 << 20;
	cr_assert_eq(setsockopt(netif_events__fd(e), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)),
		     0);
	while ((ret = netif_events__read(e, on_link, &s)) == -ENOBUFS)
		;
	cr_expect_eq(ret, 0);
	link_track(s.a);
	SH_OK("ip link add %s type veth peer name %s", s.a, s.b);
	s.got_new_a = s.got_new_b = false;
	cr_expect(wait_for(e, &s, &s.got_new_a, &s.got_new_b));
	netif_events__free(e);
}

/* ---- cleanup ---------------------------------------------------------------------------- */

Test(netif, cleanup_leaves_nothing)
{
	const char *P = nm(1), *H = nm(2), *C = nm(3), *L = nm(4), *M = nm(5);

	netns_add(P);
	link_track(H);
	SH_OK("ip -n %s link add %s type veth peer name %s netns %d", P, C, H, (int)getpid());
	link_track(L);
	SH_OK("ip link add %s type veth peer name %s", L, M);
	cr_assert_eq(leftovers(), 4, "ns %s, links %s %s %s", P, H, L, M);
	tnif_cleanup();
	cr_expect_eq(leftovers(), 0);
	cr_expect_eq(sh("ip netns list | grep -q '^%s'", P), 1, "ip netns list still shows %s", P);
}

/*
 * A test killed by a signal or a timeout never ran its .fini: remove the tnif-<pid>-* links and
 * namespaces of pids that are gone. (Criterion names report hooks after their line: this one
 * must not share a line number with another file's.)
 */
static void sweep_dir(const char *dir, const char *cmd)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int pid;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (sscanf(de->d_name, "tnif-%d-", &pid) == 1 && pid > 0 && kill(pid, 0) &&
		    errno == ESRCH)
			sh(cmd, de->d_name);
	closedir(d);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	sweep_dir("/sys/class/net", "ip link del %s 2>/dev/null");
	sweep_dir("/run/netns", "ip netns del %s 2>/dev/null");
}
