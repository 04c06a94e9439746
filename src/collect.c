// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"
#include "model.h"
#include "rate.h"
#include "util.h"

struct generation {
	struct cg_tree tree;
	struct cpu_sample cpu;
	struct cpu_totals *totals; /* per node, hierarchical, BPF only */
	uint64_t *offset_ns;       /* per node: CPU time before BPF counted it (cpu.stat seed) */
	bool valid;
};

struct collector {
	char root[PATH_MAX];
	int rootfd;
	struct tally_cpu *cpu;
	struct generation gen[2];
	int cur; /* index of the latest generation */
};

static void generation__clear(struct generation *g)
{
	cg_tree__free(&g->tree);
	free(g->totals);
	free(g->offset_ns);
	g->totals = NULL;
	g->offset_ns = NULL;
	g->valid = false;
}

struct collector *collector__new(const char *cgroot, const struct cpu_opts *opts)
{
	struct collector *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->rootfd = -1;
	if (strlen(cgroot) >= sizeof(c->root)) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	strcpy(c->root, cgroot);
	c->rootfd = open(cgroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0) {
		err = -errno;
		goto fail;
	}
	c->cpu = cpu__open(opts);
	if (!c->cpu) {
		err = -errno;
		goto fail;
	}
	return c;
fail:
	collector__free(c);
	errno = -err;
	return NULL;
}

void collector__free(struct collector *c)
{
	if (!c)
		return;
	for (int i = 0; i < 2; i++) {
		generation__clear(&c->gen[i]);
		cpu_sample__free(&c->gen[i].cpu);
	}
	cpu__free(c->cpu);
	if (c->rootfd >= 0)
		close(c->rootfd);
	free(c);
}

/* Seed: the kernel's cumulative usage of every existing cgroup, from cpu.stat. */
static void generation__seed(struct collector *c, struct generation *g)
{
	for (size_t i = 0; i < g->tree.n; i++) {
		const char *rel = g->tree.nodes[i].path;
		uint64_t usec;
		int fd;

		g->offset_ns[i] = 0;
		/* The root's path is "/": open the mount itself. */
		fd = openat(c->rootfd, rel[1] ? rel + 1 : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue; /* removed since the walk */
		if (!cpustat__read_usage(fd, &usec))
			g->offset_ns[i] = usec * 1000;
		close(fd);
	}
}

static bool tree__has(uint64_t id, void *ctx)
{
	return cg_tree__find(ctx, id) >= 0;
}

int collector__collect(struct collector *c)
{
	struct generation *prev = &c->gen[c->cur], *g = &c->gen[!c->cur];
	int err;

	generation__clear(g);
	err = cg_tree__walk(&g->tree, c->root);
	if (err)
		return err;
	g->totals = calloc(g->tree.n ? g->tree.n : 1, sizeof(*g->totals));
	g->offset_ns = calloc(g->tree.n ? g->tree.n : 1, sizeof(*g->offset_ns));
	if (!g->totals || !g->offset_ns)
		return -ENOMEM;
	err = cpu__prune(c->cpu, tree__has, &g->tree);
	if (err < 0)
		return err;
	if (!prev->valid) {
		/*
		 * First generation: read cpu.stat before the BPF counters, so the seed misses a
		 * little time rather than counting any twice.
		 */
		generation__seed(c, g);
	}
	err = cpu__read(c->cpu, &g->cpu);
	if (err)
		return err;
	if (!prev->valid) {
		/* BPF time counted during the seed reads belongs to the offset. */
		struct cpu_totals *t = g->totals;

		model__rollup_cpu(&g->tree, &g->cpu, t);
		for (size_t i = 0; i < g->tree.n; i++)
			g->offset_ns[i] = g->offset_ns[i] > t[i].time_ns ?
						  g->offset_ns[i] - t[i].time_ns :
						  0;
	} else {
		model__rollup_cpu(&g->tree, &g->cpu, g->totals);
		for (size_t i = 0; i < g->tree.n; i++) {
			int p = cg_tree__find(&prev->tree, g->tree.nodes[i].id);

			/* A cgroup born since the last generation was counted by BPF from birth. */
			g->offset_ns[i] = p >= 0 ? prev->offset_ns[p] : 0;
		}
	}
	g->valid = true;
	c->cur = !c->cur;
	return 0;
}

size_t collector__count(const struct collector *c)
{
	return c->gen[c->cur].valid ? c->gen[c->cur].tree.n : 0;
}

int collector__find(const struct collector *c, uint64_t cgid)
{
	return c->gen[c->cur].valid ? cg_tree__find(&c->gen[c->cur].tree, cgid) : -1;
}

void collector__usage(const struct collector *c, size_t i, struct cg_usage *out)
{
	const struct generation *g = &c->gen[c->cur], *prev = &c->gen[!c->cur];
	struct counter_sample a = {}, b;
	int p;

	out->node = &g->tree.nodes[i];
	out->ts_ns = g->cpu.ts_ns;
	out->cpu_ns = g->offset_ns[i] + g->totals[i].time_ns;
	out->switches = g->totals[i].switches;
	b = (struct counter_sample){ .ts_ns = g->cpu.ts_ns, .value = out->cpu_ns, .valid = true };
	p = prev->valid ? cg_tree__find(&prev->tree, out->node->id) : -1;
	if (p >= 0)
		a = (struct counter_sample){ .ts_ns = prev->cpu.ts_ns,
					     .value = prev->offset_ns[p] + prev->totals[p].time_ns,
					     .valid = true };
	out->has_rate = !rate__per_second(&a, &b, 1, &out->nano_cores);
	if (!out->has_rate)
		out->nano_cores = 0;
}

const struct cg_node *collector__node(const struct collector *c, size_t i)
{
	return &c->gen[c->cur].tree.nodes[i];
}

const struct cpu_sample *collector__cpu_sample(const struct collector *c)
{
	return &c->gen[c->cur].cpu;
}

struct tally_cpu *collector__cpu(struct collector *c)
{
	return c->cpu;
}
