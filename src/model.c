// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <string.h>

#include "model.h"

void model__rollup_cpu(const struct cg_tree *t, const struct cpu_sample *s, struct cpu_totals *out)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct cpu_entry *e = cpu_sample__find(s, t->nodes[i].id);

		out[i].time_ns = e ? e->time_ns : 0;
		out[i].switches = e ? e->switches : 0;
	}
	/* Pre-order: every child comes after its parent, so one backward pass sums subtrees. */
	for (size_t i = t->n; i-- > 0;) {
		int32_t p = t->nodes[i].parent;

		if (p >= 0) {
			out[p].time_ns += out[i].time_ns;
			out[p].switches += out[i].switches;
		}
	}
}
