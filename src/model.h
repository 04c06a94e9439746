/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The container model, pure logic on plain structs: hierarchical totals over the cgroup tree
 * from the per-cgroup counters the BPF side keeps.
 */
#ifndef __TALLY_MODEL_H
#define __TALLY_MODEL_H

#include <stdint.h>

#include "cpu.h"
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

#endif /* __TALLY_MODEL_H */
