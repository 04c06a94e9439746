// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "netif.h"

/* ---- pure parsing ---- */

/*
 * Index the attributes in [head, head + len) by type, the last of a type winning as in the
 * kernel's nla_parse. They must tile the span: libnl's own nla_parse stops quietly at an
 * attribute that overruns, which would let a cut message pass for a shorter valid one.
 */
static int attrs__parse(const struct nlattr *head, int len, const struct nlattr **tb, int max)
{
	const struct nlattr *a;
	int rem;

	memset(tb, 0, sizeof(*tb) * (max + 1));
	for (a = head, rem = len; nla_ok(a, rem); a = nla_next(a, &rem)) {
		int type = nla_type(a);

		if (type <= max)
			tb[type] = a;
	}
	/* rem < 0 only when the last attribute lacks its padding, which loses nothing. */
	return rem > 0 ? -EINVAL : 0;
}

/* The attributes after a message's fixed header of hdrlen bytes. */
static int msg__attrs(const struct nlmsghdr *h, size_t hdrlen, const struct nlattr **tb, int max)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen);

	if (h->nlmsg_len < NLMSG_LENGTH(hdrlen))
		return -EINVAL;
	return attrs__parse((const struct nlattr *)((const char *)h + off),
			    h->nlmsg_len > off ? (int)(h->nlmsg_len - off) : 0, tb, max);
}

static int attr__u32(const struct nlattr *a, uint32_t *v)
{
	if (nla_len(a) < (int)sizeof(*v))
		return -EINVAL;
	/* memcpy: payloads are 4-byte aligned only relative to the message start. */
	memcpy(v, nla_data(a), sizeof(*v));
	return 0;
}

/* A NUL-terminated string attribute into dst[n]; a longer one is cut when cut, else -EINVAL. */
static int attr__str(const struct nlattr *a, char *dst, size_t n, bool cut)
{
	const char *s = nla_data(a);
	const char *nul = memchr(s, '\0', nla_len(a));
	size_t len;

	if (!nul)
		return -EINVAL;
	len = nul - s;
	if (len >= n) {
		if (!cut)
			return -EINVAL;
		len = n - 1;
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/*
 * The counters tally reports are the first eight of both stats structs, which have only grown
 * at the end since (rtnl_link_stats64 gained rx_otherhost_dropped in 5.19): a longer payload is
 * fine, a shorter one is malformed.
 */
/* The fields both kernel structs (rtnl_link_stats64 and the 32-bit one) share, by name. */
#define STATS_OF(s)                                                                               \
	((struct netif_stats){                                                                    \
	    .rx_bytes = (s).rx_bytes,                                                             \
	    .rx_packets = (s).rx_packets,                                                         \
	    .rx_errors = (s).rx_errors,                                                           \
	    .rx_dropped = (s).rx_dropped,                                                         \
	    .tx_bytes = (s).tx_bytes,                                                             \
	    .tx_packets = (s).tx_packets,                                                         \
	    .tx_errors = (s).tx_errors,                                                           \
	    .tx_dropped = (s).tx_dropped,                                                         \
	})

static int attrs__stats(const struct nlattr *a64, const struct nlattr *a32, struct netif_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (a64) {
		struct rtnl_link_stats64 s = {};
		int len = nla_len(a64);

		if (len < (int)offsetof(struct rtnl_link_stats64, multicast))
			return -EINVAL;
		memcpy(&s, nla_data(a64), len < (int)sizeof(s) ? (size_t)len : sizeof(s));
		*st = STATS_OF(s);
	} else if (a32) {
		struct rtnl_link_stats s = {};
		int len = nla_len(a32);

		if (len < (int)offsetof(struct rtnl_link_stats, multicast))
			return -EINVAL;
		memcpy(&s, nla_data(a32), len < (int)sizeof(s) ? (size_t)len : sizeof(s));
		*st = STATS_OF(s);
	}
	return 0;
}

int netif__parse_link(const struct nlmsghdr *h, struct netif_link *out)
{
	const struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];
	struct netif_link l = { .link_netnsid = -1 };
	struct ifinfomsg ifi;
	uint32_t v;
	int err;

	if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
		return -ENOENT;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifi)))
		return -EINVAL;
	memcpy(&ifi, NLMSG_DATA(h), sizeof(ifi));
	/*
	 * The bridge notifies port changes on RTNLGRP_LINK as AF_BRIDGE link messages, and its
	 * RTM_DELLINK means "left the bridge", not "gone". Real link messages are AF_UNSPEC.
	 */
	if (ifi.ifi_family != AF_UNSPEC)
		return -ENOENT;
	err = msg__attrs(h, sizeof(ifi), tb, IFLA_MAX);
	if (err)
		return err;

	l.ifindex = ifi.ifi_index;
	l.flags = ifi.ifi_flags;
	if (tb[IFLA_IFNAME] && attr__str(tb[IFLA_IFNAME], l.name, sizeof(l.name), false))
		return -EINVAL;
	if (tb[IFLA_LINKINFO]) {
		if (attrs__parse(nla_data(tb[IFLA_LINKINFO]), nla_len(tb[IFLA_LINKINFO]), info,
				 IFLA_INFO_MAX))
			return -EINVAL;
		/* Kinds are short words; one that does not fit still names a kind, cut. */
		if (info[IFLA_INFO_KIND] &&
		    attr__str(info[IFLA_INFO_KIND], l.kind, sizeof(l.kind), true))
			return -EINVAL;
	}
	if (tb[IFLA_LINK]) {
		if (attr__u32(tb[IFLA_LINK], &v))
			return -EINVAL;
		l.link_ifindex = (int)v;
	}
	if (tb[IFLA_LINK_NETNSID]) {
		if (attr__u32(tb[IFLA_LINK_NETNSID], &v))
			return -EINVAL;
		l.link_netnsid = (int32_t)v;
	}
	if (attrs__stats(tb[IFLA_STATS64], tb[IFLA_STATS], &l.stats))
		return -EINVAL;
	*out = l;
	return 0;
}

int netif__pick_default(const struct netif_link *links, size_t n, int default_route_oif)
{
	size_t i;

	if (default_route_oif > 0)
		for (i = 0; i < n; i++)
			if (links[i].ifindex == default_route_oif)
				return (int)i;
	for (i = 0; i < n; i++)
		if (!strcmp(links[i].name, "eth0"))
			return (int)i;
	for (i = 0; i < n; i++)
		if (!(links[i].flags & IFF_LOOPBACK))
			return (int)i;
	return -1;
}

/* netif__parse_default_route, plus the route's metric to choose among several. */
static int route__parse(const struct nlmsghdr *h, int *oif, uint32_t *metric)
{
	const struct nlattr *tb[RTA_MAX + 1];
	uint32_t table, dev = 0;
	struct rtmsg rtm;
	int err;

	if (h->nlmsg_type != RTM_NEWROUTE)
		return -ENOENT;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(rtm)))
		return -EINVAL;
	memcpy(&rtm, NLMSG_DATA(h), sizeof(rtm));
	err = msg__attrs(h, sizeof(rtm), tb, RTA_MAX);
	if (err)
		return err;

	if ((rtm.rtm_family != AF_INET && rtm.rtm_family != AF_INET6) || rtm.rtm_dst_len ||
	    rtm.rtm_type != RTN_UNICAST || (rtm.rtm_flags & RTM_F_CLONED))
		return 0;
	/* rtm_table has 8 bits: tables above 255 say RT_TABLE_COMPAT there, the id in RTA_TABLE. */
	table = rtm.rtm_table;
	if (tb[RTA_TABLE] && attr__u32(tb[RTA_TABLE], &table))
		return -EINVAL;
	if (table != RT_TABLE_MAIN)
		return 0;
	*metric = 0;
	if (tb[RTA_PRIORITY] && attr__u32(tb[RTA_PRIORITY], metric))
		return -EINVAL;
	if (tb[RTA_OIF]) {
		if (attr__u32(tb[RTA_OIF], &dev))
			return -EINVAL;
	} else if (tb[RTA_MULTIPATH]) {
		struct rtnexthop nh;
		int len = nla_len(tb[RTA_MULTIPATH]);

		if (len < (int)sizeof(nh))
			return -EINVAL;
		memcpy(&nh, nla_data(tb[RTA_MULTIPATH]), sizeof(nh));
		if (nh.rtnh_len < sizeof(nh) || nh.rtnh_len > len)
			return -EINVAL;
		dev = (uint32_t)nh.rtnh_ifindex;
	}
	if (!dev || dev > INT32_MAX)
		return 0;
	*oif = (int)dev;
	return 1;
}

int netif__parse_default_route(const struct nlmsghdr *h, int *oif)
{
	uint32_t metric;

	return route__parse(h, oif, &metric);
}

/* ---- lists ---- */

void netif_list__free(struct netif_list *l)
{
	free(l->v);
	*l = (struct netif_list){};
}

const struct netif_link *netif_list__find(const struct netif_list *l, int ifindex)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].ifindex == ifindex)
			return &l->v[mid];
		if (l->v[mid].ifindex < ifindex)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct netif_link *list__push(struct netif_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct netif_link *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	return &l->v[l->n++];
}

static int link__cmp(const void *a, const void *b)
{
	const struct netif_link *x = a, *y = b;

	return (x->ifindex > y->ifindex) - (x->ifindex < y->ifindex);
}

static void list__sort(struct netif_list *l)
{
	/* Kernels since 6.7 dump in ifindex order (an xarray): skip the sort then. */
	for (size_t i = 1; i < l->n; i++)
		if (l->v[i - 1].ifindex > l->v[i].ifindex) {
			qsort(l->v, l->n, sizeof(*l->v), link__cmp);
			return;
		}
}

/* ---- sockets ---- */

/* A receive buffer that grows to the largest datagram seen. */
struct nlbuf {
	char *p;
	size_t cap;
};

/*
 * Dumps fill skbs of up to 32 KiB, and one notification of a link with many SR-IOV VFs can be
 * larger still; a datagram cut by a short buffer is lost, so its size is peeked first.
 */
#define NLBUF_MIN 32768

/* One datagram from the kernel into b. Its length, 0 for one not sent by the kernel, -errno. */
static ssize_t nlbuf__recv(struct nlbuf *b, int fd, int flags)
{
	struct sockaddr_nl from = {};
	struct iovec iov;
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
			    .msg_iovlen = 1 };
	ssize_t n;

	do
		n = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n > b->cap || !b->p) {
		size_t cap = (size_t)n > NLBUF_MIN ? (size_t)n : NLBUF_MIN;
		char *p = realloc(b->p, cap);

		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	iov = (struct iovec){ .iov_base = b->p, .iov_len = b->cap };
	do
		n = recvmsg(fd, &m, flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return from.nl_pid == 0 ? n : 0;
}

/* A NETLINK_ROUTE socket in the calling thread's namespace, joined to group (0: none). */
static int nl__open(int flags, int group, uint32_t *portid)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(sa);
	int fd, err;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | flags, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		goto fail;
	if (group && setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)))
		goto fail;
	if (portid)
		*portid = sa.nl_pid;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

struct netif_sock {
	int fd;
	uint32_t portid;
	uint32_t seq;
	struct nlbuf buf;
};

struct netif_sock *netif_sock__new(void)
{
	struct netif_sock *s = calloc(1, sizeof(*s));
	int fd;

	if (!s)
		return NULL;
	fd = nl__open(0, 0, &s->portid);
	if (fd < 0) {
		free(s);
		errno = -fd;
		return NULL;
	}
	s->fd = fd;
	return s;
}

void netif_sock__free(struct netif_sock *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s->buf.p);
	free(s);
}

typedef int (*msg_fn)(const struct nlmsghdr *h, void *ctx);

/*
 * Send req (seq filled in here) and feed each reply message to fn until the kernel is done: the
 * NLMSG_DONE of a dump, or the NLMSG_ERROR of a request sent with NLM_F_ACK (0 on success). The
 * replies are always read to the end, so the next request starts on an empty socket; replies
 * to an earlier request cut short by a failed recv are skipped by their sequence number.
 * Returns the first error (fn's, then the kernel's), -EINTR for a dump the kernel marked
 * interrupted (the set changed while it was dumped), 0.
 */
static int sock__transact(struct netif_sock *s, struct nlmsghdr *req, msg_fn fn, void *ctx)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	bool done = false, intr = false;
	struct nlmsghdr *h;
	int err = 0, rem;
	ssize_t n;

	req->nlmsg_seq = ++s->seq;
	do
		n = sendto(s->fd, req, req->nlmsg_len, 0, (struct sockaddr *)&kernel,
			   sizeof(kernel));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	while (!done) {
		n = nlbuf__recv(&s->buf, s->fd, 0);
		if (n < 0)
			return (int)n;
		rem = (int)n;
		for (h = (struct nlmsghdr *)s->buf.p; !done && nlmsg_ok(h, rem);
		     h = nlmsg_next(h, &rem)) {
			if (h->nlmsg_seq != s->seq || h->nlmsg_pid != s->portid)
				continue;
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				int e = 0;

				/*
				 * NLMSG_ERROR carries struct nlmsgerr, whose first field is the
				 * error; NLMSG_DONE of a failed dump carries the error alone.
				 */
				if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(e)))
					memcpy(&e, NLMSG_DATA(h), sizeof(e));
				else if (h->nlmsg_type == NLMSG_ERROR)
					e = -EINVAL;
				if (e < 0 && !err)
					err = e;
				done = true;
			} else if (!err && h->nlmsg_type >= NLMSG_MIN_TYPE) {
				err = fn(h, ctx);
			}
		}
	}
	if (!err && intr)
		err = -EINTR;
	return err;
}

static int link__collect(const struct nlmsghdr *h, void *ctx)
{
	struct netif_list *l = ctx;
	struct netif_link *slot = list__push(l);
	int err;

	if (!slot)
		return -ENOMEM;
	err = netif__parse_link(h, slot);
	if (err)
		l->n--;
	return err == -ENOENT ? 0 : err;
}

/* An interrupted dump is redone; links rarely change several times within one dump. */
#define DUMP_TRIES 4

int netif_sock__dump_links(struct netif_sock *s, struct netif_list *l)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
	} req = {
		.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		.h.nlmsg_type = RTM_GETLINK,
		.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		.ifi.ifi_family = AF_UNSPEC,
	};
	int err = -EINTR;

	for (int i = 0; i < DUMP_TRIES && err == -EINTR; i++) {
		l->n = 0;
		err = sock__transact(s, &req.h, link__collect, l);
	}
	if (err) {
		l->n = 0;
		return err == -EINTR ? -EAGAIN : err;
	}
	list__sort(l);
	return 0;
}

/* One RTM_NEWSTATS message (IFLA_STATS_LINK_64 asked for): its ifindex and counters. */
static int stats__parse(const struct nlmsghdr *h, int *ifindex, struct netif_stats *st)
{
	const struct nlattr *tb[IFLA_STATS_MAX + 1];
	const struct if_stats_msg *m = NLMSG_DATA(h);
	int err;

	if (h->nlmsg_type != RTM_NEWSTATS)
		return -ENOENT;
	err = msg__attrs(h, sizeof(*m), tb, IFLA_STATS_MAX);
	if (err)
		return err;
	if (!tb[IFLA_STATS_LINK_64])
		return -EINVAL;
	*ifindex = (int)m->ifindex;
	return attrs__stats(tb[IFLA_STATS_LINK_64], NULL, st);
}

struct stats_merge {
	struct netif_list *l;
	bool *seen;
	bool unknown; /* a link the list does not have: it needs a full dump */
};

static int stats__collect(const struct nlmsghdr *h, void *ctx)
{
	struct stats_merge *m = ctx;
	const struct netif_link *found;
	struct netif_stats st;
	int ifindex, err;

	err = stats__parse(h, &ifindex, &st);
	if (err)
		return err == -ENOENT ? 0 : err;
	found = netif_list__find(m->l, ifindex);
	if (!found) {
		m->unknown = true;
		return 0;
	}
	m->seen[found - m->l->v] = true;
	m->l->v[found - m->l->v].stats = st;
	return 0;
}

int netif_sock__dump_stats(struct netif_sock *s, struct netif_list *l)
{
	struct {
		struct nlmsghdr h;
		struct if_stats_msg ifsm;
	} req = {
		.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct if_stats_msg)),
		.h.nlmsg_type = RTM_GETSTATS,
		.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		.ifsm.family = AF_UNSPEC,
		.ifsm.filter_mask = IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64),
	};
	struct stats_merge m = {.l = l};
	size_t out = 0;
	int err;

	if (!l->n)
		return -EAGAIN;
	m.seen = calloc(l->n, sizeof(*m.seen));
	if (!m.seen)
		return -ENOMEM;
	err = sock__transact(s, &req.h, stats__collect, &m);
	if (!err && m.unknown)
		err = -EAGAIN;
	if (err) {
		free(m.seen);
		return err == -EINTR ? -EAGAIN : err;
	}
	/* Links the stats dump did not have are gone: drop them, keeping the order. */
	for (size_t i = 0; i < l->n; i++)
		if (m.seen[i])
			l->v[out++] = l->v[i];
	l->n = out;
	free(m.seen);
	return 0;
}

struct route_pick {
	int oif;
	uint32_t metric;
};

static int route__collect(const struct nlmsghdr *h, void *ctx)
{
	struct route_pick *best = ctx;
	uint32_t metric;
	int oif, ret;

	ret = route__parse(h, &oif, &metric);
	if (ret == 1 && (!best->oif || metric < best->metric)) {
		best->oif = oif;
		best->metric = metric;
	}
	return ret < 0 && ret != -ENOENT ? ret : 0;
}

int netif_sock__default_oif(struct netif_sock *s, int *oif)
{
	static const unsigned char families[] = { AF_INET, AF_INET6 };
	struct {
		struct nlmsghdr h;
		struct rtmsg rtm;
	} req;
	struct route_pick best = {};
	int err;

	for (size_t i = 0; i < sizeof(families) && !best.oif; i++) {
		req = (typeof(req)){
			.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
			.h.nlmsg_type = RTM_GETROUTE,
			.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.rtm.rtm_family = families[i],
		};
		err = -EINTR;
		for (int t = 0; t < DUMP_TRIES && err == -EINTR; t++) {
			best = (struct route_pick){};
			err = sock__transact(s, &req.h, route__collect, &best);
		}
		if (err)
			return err == -EINTR ? -EAGAIN : err;
	}
	*oif = best.oif;
	return 0;
}

static int nsid__collect(const struct nlmsghdr *h, void *ctx)
{
	const struct nlattr *tb[NETNSA_MAX + 1];
	uint32_t v;

	if (h->nlmsg_type != RTM_NEWNSID)
		return 0;
	if (msg__attrs(h, sizeof(struct rtgenmsg), tb, NETNSA_MAX))
		return -EINVAL;
	if (tb[NETNSA_NSID]) {
		if (attr__u32(tb[NETNSA_NSID], &v))
			return -EINVAL;
		*(int32_t *)ctx = (int32_t)v;
	}
	return 0;
}

/* The id the socket's namespace gives the namespace of nsfd (RTM_GETNSID), -1 for none. */
static int sock__nsid(struct netif_sock *s, int nsfd, int32_t *nsid)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
		char pad[NLMSG_ALIGN(sizeof(struct rtgenmsg)) - sizeof(struct rtgenmsg)];
		struct nlattr a;
		uint32_t fd;
	} req = {
		.h.nlmsg_len = sizeof(req),
		.h.nlmsg_type = RTM_GETNSID,
		.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
		.g.rtgen_family = AF_UNSPEC,
		.a.nla_len = NLA_HDRLEN + sizeof(uint32_t),
		.a.nla_type = NETNSA_FD,
		.fd = (uint32_t)nsfd,
	};

	_Static_assert(offsetof(typeof(req), a) ==
			       NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct rtgenmsg))),
		       "the attribute starts after the aligned rtgenmsg");
	*nsid = -1;
	return sock__transact(s, &req.h, nsid__collect, nsid);
}

/* ---- other namespaces ---- */

struct ns_open {
	int nsfd;
	struct netif_sock *s;
	int err;
};

static void *ns_open__run(void *arg)
{
	struct ns_open *o = arg;

	/*
	 * The network namespace is per thread: only this one moves, and it exits right after.
	 * The socket keeps the namespace it was created in.
	 */
	if (setns(o->nsfd, CLONE_NEWNET)) {
		o->err = -errno;
		return NULL;
	}
	o->s = netif_sock__new();
	if (!o->s)
		o->err = -errno;
	return NULL;
}

struct netif_sock *netif_sock__new_in(int nsfd)
{
	struct ns_open o = { .nsfd = nsfd };
	pthread_t t;
	int err;

	err = pthread_create(&t, NULL, ns_open__run, &o);
	if (err) {
		errno = err;
		return NULL;
	}
	pthread_join(t, NULL);
	if (!o.s)
		errno = -o.err;
	return o.s;
}

int netns__inspect(int nsfd, struct netns_info *out)
{
	struct netif_sock *s = NULL;
	int self = -1, oif = 0, err;
	struct stat st;

	out->links.n = 0;
	out->ns_ino = 0;
	out->default_idx = -1;
	out->host_nsid = -1;
	if (fstat(nsfd, &st))
		return -errno;
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		err = -errno;
		goto out;
	}
	s = netif_sock__new_in(nsfd);
	if (!s) {
		err = -errno;
		goto out;
	}
	err = netif_sock__dump_links(s, &out->links);
	if (err)
		goto out;
	err = netif_sock__default_oif(s, &oif);
	if (err)
		goto out;
	/*
	 * After the link dump: filling IFLA_LINK_NETNSID allocated an id in this namespace for
	 * each peer's namespace, so if a veth leads to the caller's namespace, it has one now.
	 */
	err = sock__nsid(s, self, &out->host_nsid);
	if (err)
		goto out;
	out->ns_ino = st.st_ino;
	out->default_idx = netif__pick_default(out->links.v, out->links.n, oif);
out:
	if (err)
		out->links.n = 0;
	netif_sock__free(s);
	if (self >= 0)
		close(self);
	return err;
}

void netns_info__free(struct netns_info *i)
{
	netif_list__free(&i->links);
	*i = (struct netns_info){ .default_idx = -1, .host_nsid = -1 };
}

int netif__host_peer(const struct netns_info *pod, const struct netif_link *pod_link,
		     const struct netif_list *host)
{
	const struct netif_link *h;

	/* ifindexes are per namespace: the numbers match only within the namespace pair. */
	if (pod_link->link_netnsid < 0 || pod_link->link_netnsid != pod->host_nsid ||
	    pod_link->link_ifindex <= 0 || strcmp(pod_link->kind, "veth"))
		return 0;
	h = netif_list__find(host, pod_link->link_ifindex);
	if (!h || strcmp(h->kind, "veth") || h->link_ifindex != pod_link->ifindex)
		return 0;
	return h->ifindex;
}

/* ---- events ---- */

struct netif_events {
	int fd;
	struct nlbuf buf;
};

/* Room for bursts (a node starting many pods) before the kernel drops and says ENOBUFS. */
#define EVENTS_RCVBUF (1 << 20)

struct netif_events *netif_events__new(void)
{
	struct netif_events *e = calloc(1, sizeof(*e));
	int size = EVENTS_RCVBUF;

	if (!e)
		return NULL;
	e->fd = nl__open(SOCK_NONBLOCK, RTNLGRP_LINK, NULL);
	if (e->fd < 0) {
		errno = -e->fd;
		free(e);
		return NULL;
	}
	/* Capped by net.core.rmem_max; a smaller buffer only makes ENOBUFS likelier. */
	setsockopt(e->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return e;
}

void netif_events__free(struct netif_events *e)
{
	if (!e)
		return;
	close(e->fd);
	free(e->buf.p);
	free(e);
}

int netif_events__fd(const struct netif_events *e)
{
	return e->fd;
}

int netif_events__read(struct netif_events *e,
		       void (*cb)(const struct netif_link *l, bool del, void *ctx), void *ctx)
{
	struct netif_link l;
	struct nlmsghdr *h;
	int err = 0, rem;
	ssize_t n;

	for (;;) {
		n = nlbuf__recv(&e->buf, e->fd, MSG_DONTWAIT);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return err;
		if (n < 0)
			return (int)n;
		rem = (int)n;
		for (h = (struct nlmsghdr *)e->buf.p; nlmsg_ok(h, rem); h = nlmsg_next(h, &rem)) {
			int r = netif__parse_link(h, &l);

			if (r == -ENOENT)
				continue;
			if (r) {
				err = r;
				continue;
			}
			cb(&l, h->nlmsg_type == RTM_DELLINK, ctx);
		}
	}
}
