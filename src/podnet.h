/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Pod networks: the network namespace of each container (found once, from one of its
 * processes), that namespace's interfaces and the host-side veth peer of each (found by
 * entering the namespace once), tc programs on every host-side veth (attached when the veth
 * appears, detached when it goes, following link events), and per tick one netlink dump of
 * the host namespace for the kernel's link counters. Pod namespaces are never entered per tick.
 */
#ifndef __TALLY_PODNET_H
#define __TALLY_PODNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/net.h"
#include "net.h"
#include "netif.h"

/* One interface of a pod's namespace, from the pod's point of view (host rx = pod tx). */
struct podnet_if {
	char name[16];
	int ifindex;	  /* in the pod's namespace */
	int host_ifindex; /* its host-side veth peer; 0 when none was found */
	bool has_stats;	  /* the peer was in this tick's dump of the host */
	struct netif_stats stats;
	bool has_proto;		     /* tc counts this peer (false: not attached, or not yet) */
	struct net_if_counter proto; /* direction index PODNET_RX / PODNET_TX */
};

/* Direction indexes of podnet_if.proto: the pod's receive is the host device's egress. */
#define PODNET_RX NET_IF_EGRESS
#define PODNET_TX NET_IF_INGRESS

struct podnet_ns {
	uint64_t ino; /* inode of the namespace (stat -L /proc/PID/ns/net) */
	struct podnet_if *ifs;
	size_t n;
	int default_idx; /* index in ifs of the default interface, -1 when none */
	/* internal */
	uint64_t gen;	 /* last generation a container referenced it */
	unsigned probes; /* times entered (more than once only while it has no interface) */
};

struct podnet;

/*
 * net: the BPF side for tc, or NULL (then interfaces have link counters only). tc is attached
 * and detached inline, within podnet__begin, unless podnet__background says otherwise.
 */
struct podnet *podnet__new(struct tally_net *net);
/* Accepts NULL. tc programs are detached by net__free (or left pinned, see net_opts). */
void podnet__free(struct podnet *p);

/*
 * The agent's mode: attach and detach tc on net's worker thread (net__submit), so that a
 * tick never waits for them (each costs an RCU grace period, ~17 ms: seconds for a node's
 * hundreds of veths). Results are picked up at the next podnet__begin or podnet__end; until
 * then a pod's interface has its link counters but no protocol breakdown (has_proto false).
 * A veth that goes while its attach is queued leaves nothing. Call before the first
 * podnet__begin. Accepts NULL and a podnet without net.
 */
void podnet__background(struct podnet *p);

/*
 * Start a tick: follow link events (attach tc to new host-side veths, detach from gone ones,
 * or queue that), dump the host's links once. 0 or -errno.
 */
int podnet__begin(struct podnet *p);

/*
 * The network namespace of the cgroup directory cgdir (its first process's), inspected if new.
 * *ino = 0 with 0 returned: the host's namespace. -ESRCH: no process in the cgroup yet (try
 * again next tick). Other -errno: cannot be found (permission, ...).
 */
int podnet__lookup(struct podnet *p, const char *cgdir, uint64_t *ino);

/* Mark a namespace as in use by a live container this tick. */
void podnet__ref(struct podnet *p, uint64_t ino);

/*
 * End a tick: fill every referenced namespace's interface counters from the host dump and the
 * tc counters; forget namespaces no container referenced this tick. 0 or -errno.
 */
int podnet__end(struct podnet *p);

/* A namespace known this tick, or NULL. */
const struct podnet_ns *podnet__ns(const struct podnet *p, uint64_t ino);

/*
 * Counts for tests and the daemon: namespaces known, host devices with tc attached (as picked
 * up), and host devices whose attach job is queued or under way (podnet__background).
 */
size_t podnet__count(const struct podnet *p);
size_t podnet__attached(const struct podnet *p);
size_t podnet__attaching(const struct podnet *p);
/*
 * Background attaches (podnet__background) that failed for another reason than the device
 * going away, since podnet__new; each is tried again at the next tick that sees the device.
 * The last failure's host ifindex and -errno go to *ifindex and *err (0 before any).
 */
uint64_t podnet__attach_failures(const struct podnet *p, int *ifindex, int *err);

#endif /* __TALLY_PODNET_H */
