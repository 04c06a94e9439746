/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The container model, pure logic on plain structs: hierarchical totals over the cgroup tree
 * from the per-cgroup counters the BPF side keeps.
 */
#ifndef __TALLY_MODEL_H
#define __TALLY_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "net.h"
#include "discovery.h"

/* Per-node totals of one sample: a cgroup includes all of its descendants. */
struct cpu_totals {
	uint64_t time_ns;
	uint64_t switches;
};

/*
 * Fill out[i] (t->n entries) with node i's own counters from s plus those of all its
 * descendants. Entries of s whose cgroup is not in t are ignored. O(n log m).
 */
void model__rollup_cpu(const struct cg_tree *t, const struct cpu_sample *s, struct cpu_totals *out);

/* Per-node totals of the socket traffic of a cgroup and its descendants. */
struct net_totals {
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};

/* Same as model__rollup_cpu, for the cgroup_skb counters. */
void model__rollup_net(const struct cg_tree *t, const struct net_sample *s, struct net_totals *out);

/*
 * The shared pass: v holds t->n rows of k counters, each node's own; add every node's row into
 * its parent's, children first, so each row ends as its subtree's sum.
 */
void model__rollup(const struct cg_tree *t, uint64_t *v, size_t k);

#endif /* __TALLY_MODEL_H */
