/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * One collection: walk the cgroup v2 tree, read the BPF counters of every cgroup at once, and
 * turn them into per-cgroup hierarchical usage with rates against the previous generation.
 */
#ifndef __TALLY_COLLECT_H
#define __TALLY_COLLECT_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"
#include "discovery.h"
#include "disk.h"
#include "model.h"
#include "podnet.h"

struct collector;

/* What one cgroup used, as of the latest collection. */
struct cg_usage {
	const struct cg_node *node;
	uint64_t ts_ns; /* CLOCK_MONOTONIC of the sample */
	uint64_t
	    cpu_ns; /* cumulative CPU time, descendants included (CRI usage_core_nano_seconds) */
	uint64_t switches;   /* context switches since tally started counting */
	bool has_rate;	     /* false on a cgroup's first sample or after a reset */
	uint64_t nano_cores; /* CPU used over the last interval (CRI usage_nano_cores) */
	/* Containers only: the writable layer (CRI writable_layer), or why there is none. */
	const char *upperdir;  /* NULL when there is no writable layer */
	const char *layer_why; /* with upperdir NULL: the reason ("root filesystem is ext4, ...") */
	struct disk_usage layer;
	/* false: layer is a checkpoint's, served while the tree is walked again after a restart */
	bool layer_verified;
	/* The read-only (image) layers under it: du of each, summed; walked once per path. */
	struct disk_usage image;
	size_t nimage;
	/* Socket traffic of the cgroup's tasks, descendants included, since tally started. */
	bool has_net;
	struct net_totals net;
	const char *net_why; /* with has_net false: why ("failed to attach ...") */
	/*
	 * Containers and pods: the network namespace they run in. host_network: the host's own
	 * (no interfaces of their own); else netns, NULL when not found (netns_why says why).
	 */
	bool host_network;
	const struct podnet_ns *netns;
	const char *netns_why;
};

/*
 * cgroot: the cgroup2 mount. On its first collection the collector seeds every existing
 * cgroup's cumulative CPU from the kernel's cpu.stat once (the BPF counters only see time
 * after load); cgroups born later are counted by BPF alone. NULL and errno on failure.
 */
struct collector *collector__new(const char *cgroot, const struct cpu_opts *opts);
void collector__free(struct collector *c); /* accepts NULL */

/*
 * Take a new generation. A container's writable layer is found (from one of its processes'
 * mountinfo) and walked once, when the container is first seen; later generations apply the
 * fanotify events. 0 or -errno.
 */
int collector__collect(struct collector *c);

/*
 * The latest generation: n cgroups in tree order (parents first), then the containers and
 * pods removed since the generation before, with their last sample (kept one generation).
 */
/*
 * Full walks of the cgroup tree so far. A collection reuses the previous tree while the
 * kernel counts no cgroup created, renamed or removed (cpu__tree_changes), and walks at least
 * once a minute anyway.
 */
uint64_t collector__walks(const struct collector *c);
size_t collector__count(const struct collector *c);
void collector__usage(const struct collector *c, size_t i, struct cg_usage *out);
const struct cg_node *collector__node(const struct collector *c, size_t i);
/* Index of a cgroup id in the latest generation, or -1. */
int collector__find(const struct collector *c, uint64_t cgid);
const struct cpu_sample *collector__cpu_sample(const struct collector *c);
/* The latest generation's socket counters, or NULL without the network path. */
const struct net_sample *collector__net_sample(const struct collector *c);
struct tally_cpu *collector__cpu(struct collector *c);
/* The disk engine, or NULL when fanotify is unavailable (the reason is each layer_why). */
struct disk *collector__disk(struct collector *c);
/* The network path's BPF side, or NULL when it could not be loaded (the reason: net_why). */
struct tally_net *collector__net(struct collector *c);
/* Why the network path is not there (NULL when it is): for one warning per run. */
const char *collector__net_error(const struct collector *c);
struct podnet *collector__podnet(struct collector *c);

/*
 * The agent's mode for writable layers: first walks go to a worker thread (scanq.h) so that
 * collections never wait for them; until a walk is done, the container's layer is the one in
 * state_dir's checkpoint (layer_verified false) if it has it, else none (layer_why says it is
 * being walked). Call before the first collection. state_dir may be NULL (no checkpoint).
 * *bad: checkpoint lines that did not parse (skipped). 0 or -errno (of the checkpoint).
 */
int collector__background_layers(struct collector *c, const char *state_dir, size_t *bad);
/* Save every container's layer usage to state_dir's checkpoint (atomically). 0 or -errno. */
int collector__checkpoint(const struct collector *c, const char *state_dir);
/* First walks queued or under way. */
unsigned collector__layers_walking(const struct collector *c);

#endif /* __TALLY_COLLECT_H */
