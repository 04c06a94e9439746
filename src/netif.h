/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Network interfaces over rtnetlink: which links a namespace has, their counters, which one
 * carries its default route, and which host veth is the other end of a pod's veth.
 *
 * The parsers are pure: they take one netlink message, so tests feed them captured bytes
 * (tests/fixtures/netlink/). The sockets are plain NETLINK_ROUTE sockets, one request per
 * call; libnl supplies the message and attribute walkers. A socket stays bound to the network
 * namespace it was created in, which is how another namespace is read without the calling
 * thread ever leaving its own (netns__inspect).
 */
#ifndef __TALLY_NETIF_H
#define __TALLY_NETIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nlmsghdr;

struct netif_stats {
	uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
	uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};

struct netif_link {
	int ifindex;
	char name[16]; /* IFNAMSIZ, NUL-terminated; any bytes the kernel allows in a name */
	char kind[16]; /* IFLA_INFO_KIND ("veth", "bridge", ...), cut to fit; "" when none */
	/*
	 * IFLA_LINK: for a veth, its peer's ifindex, counted in the namespace link_netnsid names
	 * when that is set, else in this link's own namespace. 0 when absent, and in a veth's
	 * RTM_DELLINK (the kernel unlinks the pair before it notifies).
	 */
	int link_ifindex;
	int32_t link_netnsid; /* IFLA_LINK_NETNSID, -1 when absent */
	unsigned flags;	      /* ifi_flags: IFF_UP, IFF_LOOPBACK, ... */
	struct netif_stats stats; /* IFLA_STATS64, else IFLA_STATS (32-bit), else zeros */
};

/*
 * One RTM_NEWLINK or RTM_DELLINK message into *out. The caller has checked that h is readable
 * for h->nlmsg_len bytes (nlmsg_ok on the buffer it came in); nothing past that is read.
 * Returns 0, -EINVAL for a short or malformed message (an attribute that overruns the message
 * or its parent, trailing bytes that are not an attribute, a name without its NUL, counters
 * too short), or -ENOENT for another message type and for link messages of another family
 * (AF_BRIDGE port notifications share RTNLGRP_LINK and RTM_DELLINK, but remove no link).
 */
int netif__parse_link(const struct nlmsghdr *h, struct netif_link *out);

/*
 * The interface a namespace's traffic uses by default, given its links and the ifindex of the
 * default route's output device (0: no default route): that link when it is in links, else
 * the one named "eth0", else the first that is not a loopback. Returns its index in links, or
 * -1 when there is none. Pure.
 */
int netif__pick_default(const struct netif_link *links, size_t n, int default_route_oif);

/*
 * One RTM_NEWROUTE message (same contract on h as netif__parse_link). A usable default route
 * is IPv4 or IPv6, prefix length 0, main table, unicast, with an output device (RTA_OIF, or
 * the first hop of RTA_MULTIPATH): its device goes to *oif and 1 is returned. 0 for any other
 * route, -EINVAL for a malformed message, -ENOENT for another message type.
 */
int netif__parse_default_route(const struct nlmsghdr *h, int *oif);

/* Links of one namespace, sorted by ifindex. Zero-initialise; reused across dumps. */
struct netif_list {
	struct netif_link *v;
	size_t n, cap;
};

void netif_list__free(struct netif_list *l); /* frees v, zeroes; accepts a zeroed list */
/* The link with this ifindex (binary search), or NULL. */
const struct netif_link *netif_list__find(const struct netif_list *l, int ifindex);

/* A NETLINK_ROUTE socket, bound to the network namespace it was created in. */
struct netif_sock;

/* In the calling thread's network namespace. NULL and errno. */
struct netif_sock *netif_sock__new(void);
/*
 * In the network namespace nsfd refers to: a short-lived thread setns()'s there and opens it,
 * so the calling thread never changes namespace. NULL and errno (EINVAL: not a netns).
 */
struct netif_sock *netif_sock__new_in(int nsfd);
void netif_sock__free(struct netif_sock *s); /* accepts NULL */

/*
 * All links of the socket's namespace, with their counters, from one RTM_GETLINK dump (this
 * runs every collection tick: no per-link requests). l->n is reset first. A dump the kernel
 * marks interrupted (links changed under it) is redone, up to 3 times, then -EAGAIN. Returns 0
 * or -errno (-ENOMEM; the kernel's error). On error l->n is 0.
 */
int netif_sock__dump_links(struct netif_sock *s, struct netif_list *l);
/*
 * Refresh the counters of l (the result of an earlier dump_links on this socket) with one
 * RTM_GETSTATS dump of 64-bit link stats only: about 9x cheaper than a link dump (make
 * bench). Links the kernel no longer has are dropped from l. -EAGAIN when l is empty, the
 * dump was interrupted or the kernel has a link l lacks: dump the links instead.
 */
int netif_sock__dump_stats(struct netif_sock *s, struct netif_list *l);

/*
 * The output device of the socket namespace's default route: the IPv4 one of lowest metric,
 * else the IPv6 one; 0 when there is neither. Returns 0 or -errno.
 */
int netif_sock__default_oif(struct netif_sock *s, int *oif);

/* What one look into another network namespace found. Zero-initialise. */
struct netns_info {
	uint64_t ns_ino;	  /* the namespace's inode (fstat of its fd) */
	struct netif_list links;
	int default_idx; /* in links, from netif__pick_default; -1 none */
	/*
	 * The id this namespace knows the caller's namespace by (-1: none). A link whose
	 * link_netnsid equals it has its peer in the caller's namespace; that is what tells a
	 * host peer from a peer in a third namespace that happens to have the same numbers.
	 */
	int32_t host_nsid;
};

/*
 * Look into the network namespace nsfd refers to, once: a socket is opened inside it by a
 * short-lived thread that setns()'s there (the calling thread never changes namespace; the
 * socket stays bound to the one it was created in), then its links, its default route and
 * the id it knows the caller's namespace by are read. *out is overwritten (links reused).
 * Returns 0 or -errno: -EINVAL when nsfd is not a network namespace, -EBADF, -EPERM, ...
 */
int netns__inspect(int nsfd, struct netns_info *out);
void netns_info__free(struct netns_info *i); /* accepts a zeroed struct; leaves it empty */

/*
 * The host side of a pod's veth: the link of host (a dump of the caller's namespace, the one
 * pod was inspected from) whose ifindex is pod_link's link_ifindex, that is a veth, and whose
 * own link_ifindex is pod_link's ifindex, provided pod_link's peer lives in the caller's
 * namespace (link_netnsid == pod->host_nsid). Returns that host ifindex, or 0 (peer in the pod
 * itself or in a third namespace, not a veth, or gone). Pure.
 */
int netif__host_peer(const struct netns_info *pod, const struct netif_link *pod_link,
		     const struct netif_list *host);

/*
 * Link events (RTNLGRP_LINK) of the caller's namespace, to follow veths as they come and go.
 * The fd is non-blocking, for the caller's event loop. They say that a link came or went, not
 * always whose peer it is: a veth pair is notified before it is tied (the end created first,
 * the one `peer name` names, gets no further RTM_NEWLINK until it changes) and after it is
 * untied, so its link_ifindex there is often 0. Take peers from a dump.
 */
struct netif_events;

struct netif_events *netif_events__new(void); /* NULL and errno */
void netif_events__free(struct netif_events *e); /* accepts NULL */
int netif_events__fd(const struct netif_events *e);
/*
 * Read what is queued, calling cb for each link message (del: RTM_DELLINK), until the socket
 * is empty. Returns 0, or -ENOBUFS when the kernel dropped events because the socket was full:
 * the caller dumps the links again (the events queued after the loss are still delivered by
 * later calls). -EINVAL when a message did not parse (the others were delivered); other
 * -errno from recv.
 */
int netif_events__read(struct netif_events *e,
		       void (*cb)(const struct netif_link *l, bool del, void *ctx), void *ctx);

#endif /* __TALLY_NETIF_H */
