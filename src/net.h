/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The network path, userspace side: load bpf/net.bpf.c, attach its socket counters at the
 * cgroup v2 root and its device counters to chosen devices (tcx, else classic tc), and read
 * every cgroup's counters in batches.
 */
#ifndef __TALLY_NET_USER_H
#define __TALLY_NET_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/net.h"

struct net_opts {
	uint32_t max_cgroups;  /* entries of the cgroup map; 0: TALLY_NET_DEFAULT_MAX_CGROUPS */
	uint32_t max_ifaces;   /* entries of the device map; 0: TALLY_NET_DEFAULT_MAX_IFACES */
	bool force_tc_classic; /* skip tcx, as on a kernel without it (tests the fallback) */
	/*
	 * The agent's bpffs directory (see pin.h): maps, the socket counters' links and each
	 * device's tcx links pinned there and reused by the next agent; nothing is detached on
	 * net__free. NULL: nothing pinned, everything detached on free.
	 */
	const char *pin_root;
};

/* Own (not hierarchical) counters of one cgroup's sockets; see include/tally/net.h. */
struct net_cg_entry {
	uint64_t cgid;
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};

struct net_sample {
	uint64_t ts_ns;		/* CLOCK_MONOTONIC just after the read */
	struct net_cg_entry *e; /* sorted by cgid */
	size_t n, cap;
	size_t map_entries;	  /* entries in the cgroup map (its fill) */
	uint64_t dropped_updates; /* skbs not counted because the map was full, since load */
	uint64_t dropped_bytes;	  /* bytes those skbs carried */
};

struct tally_net;
struct net_bpf;

/*
 * Open, configure and load, then attach the socket counters at cgroot (the cgroup v2 mount)
 * as links next to whatever else is attached there. NULL and errno on failure.
 */
struct tally_net *net__open(const char *cgroot, const struct net_opts *o);
/*
 * Stop the worker (see net__submit), then detach everything: links closed, classic tc filters
 * deleted, and the clsact qdisc too when tally created it and nothing else is on it. Accepts
 * NULL.
 */
void net__free(struct tally_net *n);

/*
 * Count a device's traffic by protocol: a tcx link on each direction, or where the kernel
 * has no tcx, a classic tc filter of tally's own priority and handle (clsact created if
 * missing). Idempotent. 0 or -errno.
 */
int net__attach_if(struct tally_net *n, int ifindex);
/*
 * Undo net__attach_if and drop the device's counters; fine when the device is already gone.
 * 0, -ENOENT when not attached, or -errno of a filter that could not be deleted.
 */
int net__detach_if(struct tally_net *n, int ifindex);
bool net__is_attached(const struct tally_net *n, int ifindex);

/*
 * The same in the background: one worker thread (started on the first job, joined by
 * net__free, which drops the jobs still queued) runs net__attach_if or net__detach_if for each
 * job in the order they were submitted, so a caller's loop never waits for the kernel's RCU
 * grace period of each attach and detach (~17 ms). Everything else here is safe to call
 * meanwhile: readers see a device as attached once its programs are. cookie is the caller's,
 * handed back with the result. 0, -ENOMEM or -errno of pthread_create.
 */
struct net_job {
	struct net_job *next; /* internal */
	int ifindex;
	bool attach; /* false: detach */
	int err;     /* what net__attach_if or net__detach_if returned */
	uint64_t cookie;
};
int net__submit(struct tally_net *n, int ifindex, bool attach, uint64_t cookie);
/* Each job finished since the last call, once and in the order they ran: done(job, ctx). */
void net__drain(struct tally_net *n, void (*done)(const struct net_job *j, void *ctx), void *ctx);
/* Jobs submitted and not drained yet (queued, under way or finished). */
unsigned net__pending(struct tally_net *n);
/*
 * Keep the worker from starting queued jobs (the one under way finishes) until as many calls
 * with hold false. For a caller about to make netlink requests, which wait for an attach under
 * way (it keeps the rtnl lock across its grace periods, by all appearances): 60 new pods'
 * namespaces were looked up in 16-88 ms with the worker held, 1071 ms beside it. And tests.
 */
void net__hold(struct tally_net *n, bool hold);
/* What net__attach_if uses: "tcx" or "tc" (classic). */
const char *net__tc_mode(const struct tally_net *n);
/* Whether a removed cgroup's counters fold into its parent in the kernel. */
bool net__tracks_removal(const struct tally_net *n);

/* Read every cgroup's counters into s (reused between calls). 0 or -errno. */
int net__read_cgroups(struct tally_net *n, struct net_sample *s);
void net_sample__free(struct net_sample *s);
const struct net_cg_entry *net_sample__find(const struct net_sample *s, uint64_t cgid);

/* A device's counters, summed over CPUs. 0, -ENOENT when not attached, or -errno. */
int net__read_if(struct tally_net *n, int ifindex, struct net_if_counter *out);

struct net_bpf *net__skel(struct tally_net *n); /* for the benchmark's bpf_stats */

/* Pinned mode: a previous layout's directory replaced at open ("" if none), for the log. */
const char *net__replaced(const struct tally_net *n);
/*
 * `tally agent --cleanup`: delete tally's classic tc filters (its priority and handle, running
 * its programs) from every device of this namespace. The number deleted, or -errno.
 */
int net__remove_classic_filters(void);

#endif /* __TALLY_NET_USER_H */
