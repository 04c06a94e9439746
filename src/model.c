// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <string.h>

#include "model.h"

void model__rollup(const struct cg_tree *t, uint64_t *v, size_t k)
{
	/* Pre-order: every child comes after its parent, so one backward pass sums subtrees. */
	for (size_t i = t->n; i-- > 0;) {
		int32_t p = t->nodes[i].parent;

		if (p < 0)
			continue;
		for (size_t j = 0; j < k; j++)
			v[(size_t)p * k + j] += v[i * k + j];
	}
}

void model__rollup_cpu(const struct cg_tree *t, const struct cpu_sample *s, struct cpu_totals *out)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct cpu_entry *e = cpu_sample__find(s, t->nodes[i].id);

		out[i].time_ns = e ? e->time_ns : 0;
		out[i].switches = e ? e->switches : 0;
	}
	model__rollup(t, (uint64_t *)out, sizeof(*out) / sizeof(uint64_t));
}

void model__rollup_net(const struct cg_tree *t, const struct net_sample *s, struct net_totals *out)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct net_cg_entry *e = net_sample__find(s, t->nodes[i].id);

		out[i] = e ? (struct net_totals){e->rx_bytes, e->rx_packets, e->tx_bytes,
						 e->tx_packets}
			   : (struct net_totals){};
	}
	model__rollup(t, (uint64_t *)out, sizeof(*out) / sizeof(uint64_t));
}
