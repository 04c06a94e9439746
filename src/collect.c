// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "checkpoint.h"
#include "collect.h"
#include "layer.h"
#include "model.h"
#include "rate.h"
#include "scanq.h"
#include "util.h"

struct generation {
	struct cg_tree tree;
	struct cpu_sample cpu;
	struct cpu_totals *totals; /* per node, hierarchical, BPF only */
	struct net_sample net;
	struct net_totals *net_totals; /* per node, hierarchical */
	uint64_t *offset_ns;	   /* per node: CPU time before BPF counted it (cpu.stat seed) */
	/* The walk the tree comes from (copied along while it is reused): see collector__tree. */
	uint64_t tree_changes; /* cpu__tree_changes() read just before it */
	uint64_t walked_ns;    /* CLOCK_MONOTONIC when it started */
	bool tree_settled;     /* the count held still since the walk before it too */
	bool valid;
};

/*
 * The longest a tree is reused without a walk, whatever the kernel counted: a safety net for
 * changes the count cannot see, such as its programs detached behind tally's back (bpftool
 * link detach) or a mkdir stalled for longer than a collection period between its count and
 * its directory showing.
 */
#define TREE_WALK_MAX_NS (60 * NSEC_PER_SEC)

/*
 * How long a container must have had no overlay root before tally stops looking (runc joins
 * the cgroup, then pivots to the container's root, within a second or so under load).
 */
#define WL_SETTLE_NS (3 * NSEC_PER_SEC)

/* A container's writable layer, kept while the container lives. */
struct wlayer {
	uint64_t cgid;
	struct disk_tree *tree;
	char *upperdir;
	char why[160];
	bool settled; /* found, or known not to exist: not looked up again */
	int err;		/* the last lookup's answer, when it found no layer */
	uint64_t err_since_ns;	/* CLOCK_MONOTONIC since when it has been that answer */
	bool scanning;	/* its first walk is with the worker (scanq); tree is NULL meanwhile */
	bool from_ckpt; /* while scanning: usage is the checkpoint's, not verified */
	struct disk_usage usage;
	struct disk_usage image; /* the read-only layers under it, summed */
	size_t nimage;
	/* its network namespace (0: the host's), settled once seen the same twice in a row */
	uint64_t netns;
	bool net_seen;
	bool net_settled;
	char net_why[160];
	char pod_uid[CG_UID_MAX]; /* "" outside a pod */
};

/*
 * A container or pod whose cgroup went since the last generation: its last sample, served for
 * one more generation so that a scrape per period still sees its final numbers.
 */
struct departed {
	struct cg_node node; /* path owned */
	struct cg_usage u;   /* u.node: set by collector__usage; u.upperdir owned */
};

struct collector {
	char root[PATH_MAX];
	int rootfd;
	struct tally_cpu *cpu;
	struct disk *disk;
	int disk_err;
	struct layer_cache *images;
	struct tally_net *net; /* NULL: see net_why */
	char net_why[160];
	struct podnet *pods; /* NULL: see pods_why */
	char pods_why[160];
	bool pods_ok; /* this generation's dump of the host's links worked */
	struct wlayer *wl; /* sorted by cgid */
	size_t nwl;
	/*
	 * The entries of wl in a pod, sorted by pod uid then cgid: a pod finds
	 * its containers' namespaces without a pass over every container (usage__netns).
	 */
	const struct wlayer **wl_pod;
	size_t nwl_pod;
	struct generation gen[2];
	struct departed *gone; /* of the latest generation, after its tree's nodes */
	struct scanq *scans;   /* NULL: first walks inline (collector__background_layers) */
	struct ckpt ckpt;      /* the checkpoint found at start-up, sorted */
	size_t ngone;
	int cur;     /* index of the latest generation */
	bool pinned; /* the counters outlive the collector: so do their seeds (cg_seed) */
	uint64_t walks; /* full walks of the cgroup tree so far */
};

static void generation__clear(struct generation *g)
{
	cg_tree__free(&g->tree);
	free(g->totals);
	free(g->offset_ns);
	free(g->net_totals);
	g->totals = NULL;
	g->offset_ns = NULL;
	g->net_totals = NULL;
	g->valid = false;
}

struct collector *collector__new(const char *cgroot, const struct cpu_opts *opts)
{
	struct cpu_opts o = opts ? *opts : (struct cpu_opts){};
	struct collector *c;
	struct statfs sfs;
	struct stat st;
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
	/* Changes elsewhere (outside a cgroup namespace's subtree) do not make it walk. */
	if (fstat(c->rootfd, &st) || fstatfs(c->rootfd, &sfs)) {
		err = -errno;
		goto fail;
	}
	o.tree_root = st.st_ino;
	/* Not cgroup2 (a copy of a tree, say): no cgroup event says it changed. */
	if ((uint64_t)sfs.f_type != CGROUP2_SUPER_MAGIC)
		o.force_walks = true;
	c->cpu = cpu__open(&o);
	if (!c->cpu) {
		err = -errno;
		goto fail;
	}
	/* Without fanotify the CPU path still works; each container says why it has no layer. */
	c->disk = disk__new(NULL);
	if (!c->disk)
		c->disk_err = errno;
	c->images = layer_cache__new();
	if (!c->images) {
		err = -errno;
		goto fail;
	}
	/* Without the network programs the CPU and disk paths still work; each says why. */
	c->pinned = opts && opts->pin_root;
	/* One --max-cgroups for both paths' cgroup maps. */
	c->net = net__open(cgroot, &(struct net_opts){.max_cgroups = opts ? opts->max_cgroups : 0,
						     .pin_root = opts ? opts->pin_root : NULL});
	if (!c->net)
		snprintf(c->net_why, sizeof(c->net_why),
			 "failed to load the cgroup_skb and tc programs: %s", strerror(errno));
	c->pods = podnet__new(c->net);
	if (!c->pods)
		snprintf(c->pods_why, sizeof(c->pods_why), "failed to open netlink: %s",
			 strerror(errno));
	return c;
fail:
	collector__free(c);
	errno = -err;
	return NULL;
}

static void departed__free(struct departed *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(d[i].node.path);
		free((char *)d[i].u.upperdir);
	}
	free(d);
}

void collector__free(struct collector *c)
{
	if (!c)
		return;
	departed__free(c->gone, c->ngone);
	scanq__free(c->scans); /* its trees are untracked before the engine goes */
	ckpt__free(&c->ckpt);
	for (int i = 0; i < 2; i++) {
		generation__clear(&c->gen[i]);
		cpu_sample__free(&c->gen[i].cpu);
		net_sample__free(&c->gen[i].net);
	}
	for (size_t i = 0; i < c->nwl; i++) {
		disk__untrack(c->disk, c->wl[i].tree);
		free(c->wl[i].upperdir);
	}
	free(c->wl);
	free(c->wl_pod);
	disk__free(c->disk);
	layer_cache__free(c->images);
	podnet__free(c->pods);
	net__free(c->net);
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

/* Seed from what a predecessor over the same pinned counters stored; gone cgroups' dropped. */
static int generation__seed_pinned(struct collector *c, struct generation *g)
{
	int err = cpu__seed_prune(c->cpu, tree__has, &g->tree);

	for (size_t i = 0; !err && i < g->tree.n; i++) {
		err = cpu__seed_get(c->cpu, g->tree.nodes[i].id, &g->offset_ns[i]);
		/* None: born after the counters, which saw all of its time. */
		if (err == -ENOENT) {
			g->offset_ns[i] = 0;
			err = 0;
		}
	}
	return err;
}

/* Keep the seeds with the pinned counters; a cgroup gone since prev takes its own along. */
static int generation__store_seeds(struct collector *c, const struct generation *prev,
				   const struct generation *g)
{
	int err = 0;

	for (size_t i = 0; !err && !prev->valid && i < g->tree.n; i++)
		if (g->offset_ns[i])
			err = cpu__seed_put(c->cpu, g->tree.nodes[i].id, g->offset_ns[i]);
	for (size_t i = 0; !err && prev->valid && i < prev->tree.n; i++)
		if (prev->offset_ns[i] && cg_tree__find(&g->tree, prev->tree.nodes[i].id) < 0)
			err = cpu__seed_del(c->cpu, prev->tree.nodes[i].id);
	return err;
}

static int cmp_wl(const void *a, const void *b)
{
	const struct wlayer *x = a, *y = b;

	return x->cgid < y->cgid ? -1 : x->cgid > y->cgid;
}

static struct wlayer *wl_find(const struct collector *c, uint64_t cgid)
{
	struct wlayer key = {.cgid = cgid};

	if (!c->nwl)
		return NULL; /* c->wl may be NULL: no bsearch on it */
	return bsearch(&key, c->wl, c->nwl, sizeof(key), cmp_wl);
}

static int cmp_wl_pod(const void *a, const void *b)
{
	const struct wlayer *x = *(const struct wlayer *const *)a;
	const struct wlayer *y = *(const struct wlayer *const *)b;
	int r = strcmp(x->pod_uid, y->pod_uid);

	return r ? r : cmp_wl(x, y);
}

/* c->wl_pod of the containers in c->wl that are in a pod. 0 or -ENOMEM (then none). */
static int wl_pod_index(struct collector *c)
{
	free(c->wl_pod);
	c->wl_pod = NULL;
	c->nwl_pod = 0;
	for (size_t i = 0; i < c->nwl; i++) {
		if (!c->wl[i].pod_uid[0])
			continue;
		if (!c->wl_pod) {
			c->wl_pod = malloc(c->nwl * sizeof(*c->wl_pod));
			if (!c->wl_pod)
				return -ENOMEM;
		}
		c->wl_pod[c->nwl_pod++] = &c->wl[i];
	}
	if (c->nwl_pod)
		qsort(c->wl_pod, c->nwl_pod, sizeof(*c->wl_pod), cmp_wl_pod);
	return 0;
}

/* The position in c->wl_pod of the first container of pod uid (c->nwl_pod when none). */
static size_t wl_pod_first(const struct collector *c, const char *uid)
{
	size_t lo = 0, hi = c->nwl_pod;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(c->wl_pod[mid]->pod_uid, uid) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Find and walk the writable layer of a container seen for the first time (or not settled). */
static void wl_lookup(struct collector *c, const struct cg_node *n, struct wlayer *w)
{
	struct layer_info li = {};
	char dir[PATH_MAX];
	uint64_t now;
	int err;

	snprintf(dir, sizeof(dir), "%s%s", c->root, n->path[1] ? n->path : "");
	err = layer__find_for_cgroup("/proc", dir, &li);
	if (err) {
		const char *why = layer__strerror(err, &li, w->why, sizeof(w->why));

		if (why != w->why)
			snprintf(w->why, sizeof(w->why), "%s", why);
		/*
		 * A runtime moves the container's first process into the cgroup before it
		 * switches to the container's root: "not an overlay" may be the host's root,
		 * seen in between. Settled only once it has been the answer for a while;
		 * "no process yet" never settles.
		 */
		now = clock__monotonic_ns();
		if (err != w->err || !w->err_since_ns) {
			w->err = err;
			w->err_since_ns = now;
		}
		w->settled = err != -ESRCH && now - w->err_since_ns >= WL_SETTLE_NS;
		goto out;
	}
	if (!c->disk) {
		snprintf(w->why, sizeof(w->why), "fanotify is unavailable: %s",
			 strerror(c->disk_err));
		w->settled = true;
		goto out;
	}
	if (c->scans) {
		const struct ckpt_entry *e = ckpt__find(&c->ckpt, n->id, li.upperdir);

		w->upperdir = strdup(li.upperdir);
		if (!w->upperdir || scanq__submit(c->scans, n->id, li.upperdir)) {
			free(w->upperdir);
			w->upperdir = NULL;
			goto out;
		}
		w->scanning = true;
		/* Served, marked unverified, until the walk says; else nothing yet. */
		w->from_ckpt = e != NULL;
		if (e)
			w->usage = e->usage;
		snprintf(w->why, sizeof(w->why), "walking upperdir '%s' for the first time",
			 li.upperdir);
	} else {
		w->tree = disk__track(c->disk, li.upperdir);
		if (!w->tree) {
			snprintf(w->why, sizeof(w->why), "failed to walk upperdir: %s",
				 strerror(errno));
			goto out;
		}
		w->upperdir = strdup(li.upperdir);
		if (!w->upperdir) {
			disk__untrack(c->disk, w->tree);
			w->tree = NULL;
			goto out;
		}
	}
	w->settled = true;
	/* Image layers never change: walked once per path, shared by every container. */
	for (size_t i = 0; i < li.nlower; i++) {
		struct disk_usage u;

		if (li.lowerdirs[i][0] != '/' || layer_cache__usage(c->images, li.lowerdirs[i], &u))
			continue; /* relative (docker's l/ names) or unreadable: left out */
		w->image.used_bytes += u.used_bytes;
		w->image.inodes_used += u.inodes_used;
		w->image.timestamp_ns = u.timestamp_ns;
		w->nimage++;
	}
out:
	layer_info__free(&li);
}

/* A container's network namespace, looked up until found (it needs a live process). */
static void netns_lookup(struct collector *c, const struct cg_node *n, struct wlayer *w)
{
	char dir[PATH_MAX];
	uint64_t ino;
	int err;

	if (!c->pods_ok) {
		snprintf(w->net_why, sizeof(w->net_why), "%s",
			 c->pods ? "failed to dump the host's links" : c->pods_why);
		return;
	}
	if (w->net_settled) {
		podnet__ref(c->pods, w->netns);
		return;
	}
	snprintf(dir, sizeof(dir), "%s%s", c->root, n->path[1] ? n->path : "");
	err = podnet__lookup(c->pods, dir, &ino);
	if (!err) {
		/*
		 * A runtime moves a container's first process into its cgroup before that process
		 * enters the container's namespace: the first look can see the host's. Settle
		 * only on the same answer twice.
		 */
		w->net_settled = w->net_seen && ino == w->netns;
		w->net_seen = true;
		w->netns = ino;
		podnet__ref(c->pods, w->netns);
		return;
	}
	/* No process yet: looked up again next time. Anything else is for good. */
	w->net_settled = err != -ESRCH;
	w->net_seen = false;
	snprintf(w->net_why, sizeof(w->net_why), "%s",
		 err == -ESRCH ? "no process in the cgroup" : strerror(-err));
}

/* scanq__drain: a first walk is done; its container may have gone meanwhile. */
static void wl_scanned(uint64_t cgid, struct disk_tree *t, int err, void *ctx)
{
	struct collector *c = ctx;
	struct wlayer *w = wl_find(c, cgid);

	if (!w || !w->scanning) {
		disk__untrack(c->disk, t);
		return;
	}
	w->scanning = false;
	w->from_ckpt = false;
	w->tree = t;
	if (t)
		return;
	snprintf(w->why, sizeof(w->why), "failed to walk upperdir: %s", strerror(-err));
	free(w->upperdir);
	w->upperdir = NULL;
}

/* Match the writable layers to the generation's containers: new ones found, gone ones freed. */
static int wl_update(struct collector *c, const struct cg_tree *tree)
{
	struct wlayer *nw = NULL;
	size_t n = 0, cap = 0;
	int err;

	for (size_t i = 0; i < tree->n; i++) {
		const struct cg_node *node = &tree->nodes[i];
		struct wlayer *old, *w;

		if (node->ident.kind != CG_CONTAINER)
			continue;
		if (n == cap) {
			struct wlayer *p = realloc(nw, (cap = cap ? cap * 2 : 16) * sizeof(*p));

			if (!p) {
				free(nw);
				return -ENOMEM;
			}
			nw = p;
		}
		w = &nw[n++];
		old = wl_find(c, node->id);
		if (old) {
			*w = *old;
			old->cgid = 0; /* moved */
			old->tree = NULL;
			old->upperdir = NULL;
		} else {
			*w = (struct wlayer){.cgid = node->id};
		}
		/* A cgroup's path never changes, nor then its pod. */
		memcpy(w->pod_uid, node->ident.pod_uid, sizeof(w->pod_uid));
		if (!w->settled)
			wl_lookup(c, node, w);
		netns_lookup(c, node, w);
	}
	for (size_t i = 0; i < c->nwl; i++) {
		disk__untrack(c->disk, c->wl[i].tree);
		free(c->wl[i].upperdir);
	}
	free(c->wl);
	if (n)
		qsort(nw, n, sizeof(*nw), cmp_wl);
	c->wl = nw;
	c->nwl = n;
	err = wl_pod_index(c);
	if (err)
		return err;
	if (!c->disk)
		return 0;
	if (c->scans)
		scanq__drain(c->scans, wl_scanned, c);
	err = disk__process(c->disk);
	if (err < 0)
		return err;
	for (size_t i = 0; i < n; i++) {
		struct wlayer *w = &nw[i];

		if (w->tree && disk__usage(c->disk, w->tree, &w->usage)) {
			snprintf(w->why, sizeof(w->why), "upperdir '%s' was removed", w->upperdir);
			disk__untrack(c->disk, w->tree);
			w->tree = NULL;
			free(w->upperdir);
			w->upperdir = NULL;
		}
	}
	return 0;
}

/* The containers and pods of the latest generation that are not in tree: kept one more. */
static int departed__update(struct collector *c, const struct cg_tree *tree)
{
	const struct generation *prev = &c->gen[c->cur];
	struct departed *d = NULL;
	size_t n = 0;

	for (size_t i = 0; prev->valid && i < prev->tree.n; i++) {
		const struct cg_node *x = &prev->tree.nodes[i];
		struct departed *p, *e;
		const char *upperdir;

		if (x->ident.kind == CG_OTHER || cg_tree__find(tree, x->id) >= 0)
			continue;
		p = realloc(d, (n + 1) * sizeof(*d));
		if (!p)
			goto nomem;
		d = p;
		e = &d[n];
		*e = (struct departed){.node = *x};
		collector__usage(c, i, &e->u);
		upperdir = e->u.upperdir;
		e->node.path = strdup(x->path);
		e->u.upperdir = upperdir ? strdup(upperdir) : NULL;
		n++;
		if (!e->node.path || (upperdir && !e->u.upperdir))
			goto nomem;
		e->node.parent = -1;
		/* The rest pointed into this generation or the pod's namespace, which go now. */
		if (!e->u.upperdir && x->ident.kind == CG_CONTAINER)
			e->u.layer_why = "the container was removed";
		e->u.netns = NULL;
		e->u.netns_why = e->u.host_network ? NULL : "the container was removed";
	}
	departed__free(c->gone, c->ngone);
	c->gone = d;
	c->ngone = n;
	return 0;
nomem:
	departed__free(d, n);
	return -ENOMEM;
}

/*
 * The cgroup tree of generation g: walked, or a copy of prev's when the kernel counted no
 * cgroup v2 mkdir, rmdir or rename since the walk prev's tree comes from, read before that
 * walk (so a change racing it is seen next time). A mkdir counts just before its directory
 * shows, so a walk right after one can miss it: a walk is trusted only when the count also
 * held still since the walk before it, and otherwise the next collection walks again.
 */
static int collector__tree(struct collector *c, const struct generation *prev, struct generation *g)
{
	uint64_t changes = cpu__tree_changes(c->cpu), now = clock__monotonic_ns();
	int err;

	if (prev->valid && prev->tree_settled && changes == prev->tree_changes &&
	    now - prev->walked_ns < TREE_WALK_MAX_NS) {
		g->tree_changes = prev->tree_changes;
		g->walked_ns = prev->walked_ns;
		g->tree_settled = true;
		return cg_tree__copy(&g->tree, &prev->tree);
	}
	err = cg_tree__walk(&g->tree, c->root);
	if (err)
		return err;
	c->walks++;
	g->tree_changes = changes;
	g->walked_ns = now;
	g->tree_settled = prev->valid && changes == prev->tree_changes;
	return 0;
}

int collector__collect(struct collector *c)
{
	struct generation *prev = &c->gen[c->cur], *g = &c->gen[!c->cur];
	int err;

	generation__clear(g);
	err = collector__tree(c, prev, g);
	if (!err)
		err = departed__update(c, &g->tree);
	if (err)
		return err;
	g->totals = calloc(g->tree.n ? g->tree.n : 1, sizeof(*g->totals));
	g->offset_ns = calloc(g->tree.n ? g->tree.n : 1, sizeof(*g->offset_ns));
	if (!g->totals || !g->offset_ns)
		return -ENOMEM;
	err = cpu__prune(c->cpu, tree__has, &g->tree);
	if (err < 0)
		return err;
	if (!prev->valid && cpu__resumed(c->cpu)) {
		err = generation__seed_pinned(c, g);
		if (err)
			return err;
	} else if (!prev->valid) {
		/*
		 * First generation: read cpu.stat before the BPF counters, so the seed misses a
		 * little time rather than counting any twice.
		 */
		generation__seed(c, g);
	}
	err = cpu__read(c->cpu, &g->cpu);
	if (err)
		return err;
	if (!prev->valid && cpu__resumed(c->cpu)) {
		model__rollup_cpu(&g->tree, &g->cpu, g->totals);
	} else if (!prev->valid) {
		/* BPF time counted during the seed reads belongs to the offset. */
		struct cpu_totals *t = g->totals;

		model__rollup_cpu(&g->tree, &g->cpu, t);
		for (size_t i = 0; i < g->tree.n; i++)
			g->offset_ns[i] =
			    g->offset_ns[i] > t[i].time_ns ? g->offset_ns[i] - t[i].time_ns : 0;
	} else {
		model__rollup_cpu(&g->tree, &g->cpu, g->totals);
		for (size_t i = 0; i < g->tree.n; i++) {
			int p = cg_tree__find(&prev->tree, g->tree.nodes[i].id);

			/* A cgroup born since the last generation was counted by BPF from birth. */
			g->offset_ns[i] = p >= 0 ? prev->offset_ns[p] : 0;
		}
	}
	if (c->pinned && !(!prev->valid && cpu__resumed(c->cpu))) {
		err = generation__store_seeds(c, prev, g);
		if (err)
			return err;
	}
	if (c->net) {
		err = net__read_cgroups(c->net, &g->net);
		if (err)
			return err;
		g->net_totals = calloc(g->tree.n ? g->tree.n : 1, sizeof(*g->net_totals));
		if (!g->net_totals)
			return -ENOMEM;
		model__rollup_net(&g->tree, &g->net, g->net_totals);
	}
	/* A failed dump leaves this generation without interfaces, not without a sample. */
	c->pods_ok = c->pods && !podnet__begin(c->pods);
	err = wl_update(c, &g->tree);
	if (c->pods_ok && !err)
		err = podnet__end(c->pods);
	if (err)
		return err;
	g->valid = true;
	c->cur = !c->cur;
	return 0;
}

uint64_t collector__walks(const struct collector *c)
{
	return c->walks;
}

size_t collector__count(const struct collector *c)
{
	return c->gen[c->cur].valid ? c->gen[c->cur].tree.n + c->ngone : 0;
}

int collector__find(const struct collector *c, uint64_t cgid)
{
	const struct generation *g = &c->gen[c->cur];
	int i;

	if (!g->valid)
		return -1;
	i = cg_tree__find(&g->tree, cgid);
	for (size_t k = 0; i < 0 && k < c->ngone; k++)
		if (c->gone[k].node.id == cgid)
			i = (int)(g->tree.n + k);
	return i;
}

/* The namespace w's container runs in, into out: false (out->netns_why says why) if unknown. */
static bool wl_netns(const struct collector *c, const struct wlayer *w, struct cg_usage *out)
{
	if (!w->net_seen || (w->netns && !c->pods_ok)) {
		out->netns_why = w->net_why;
		return false;
	}
	out->host_network = !w->netns;
	out->netns = w->netns ? podnet__ns(c->pods, w->netns) : NULL;
	out->netns_why = NULL;
	return true;
}

/*
 * The network namespace of a container, or of a pod: that of its first container (by cgroup
 * id) that knows it. O(log n) either way, as it runs for every pod of every scrape.
 */
static void usage__netns(const struct collector *c, struct cg_usage *out)
{
	const struct cg_ident *id = &out->node->ident;
	const struct wlayer *w;

	out->host_network = false;
	out->netns = NULL;
	out->netns_why = NULL;
	if (id->kind == CG_OTHER)
		return;
	out->netns_why = "no container of the pod was looked up yet";
	if (id->kind == CG_CONTAINER) {
		w = wl_find(c, out->node->id);
		if (w)
			wl_netns(c, w, out);
		return;
	}
	for (size_t k = wl_pod_first(c, id->pod_uid); k < c->nwl_pod; k++) {
		w = c->wl_pod[k];
		if (strcmp(w->pod_uid, id->pod_uid) || wl_netns(c, w, out))
			return;
	}
}

void collector__usage(const struct collector *c, size_t i, struct cg_usage *out)
{
	const struct generation *g = &c->gen[c->cur], *prev = &c->gen[!c->cur];
	struct counter_sample a = {}, b;
	int p;

	if (i >= g->tree.n) {
		*out = c->gone[i - g->tree.n].u;
		out->node = &c->gone[i - g->tree.n].node; /* the array moves as it grows */
		return;
	}
	out->node = &g->tree.nodes[i];
	out->ts_ns = g->cpu.ts_ns;
	out->cpu_ns = g->offset_ns[i] + g->totals[i].time_ns;
	out->switches = g->totals[i].switches;
	b = (struct counter_sample){.ts_ns = g->cpu.ts_ns, .value = out->cpu_ns, .valid = true};
	p = prev->valid ? cg_tree__find(&prev->tree, out->node->id) : -1;
	if (p >= 0)
		a = (struct counter_sample){.ts_ns = prev->cpu.ts_ns,
					    .value = prev->offset_ns[p] + prev->totals[p].time_ns,
					    .valid = true};
	out->has_rate = !rate__per_second(&a, &b, 1, &out->nano_cores);
	/* A rate from a lower-bound sample would be off by a whole stretch: no data, not wrong. */
	if (g->cpu.lower_bound || (prev->valid && prev->cpu.lower_bound))
		out->has_rate = false;
	if (!out->has_rate)
		out->nano_cores = 0;
	out->upperdir = NULL;
	out->layer_why = NULL;
	out->layer_verified = false;
	out->layer = (struct disk_usage){};
	out->image = (struct disk_usage){};
	out->nimage = 0;
	out->has_net = c->net && g->net_totals;
	out->net = out->has_net ? g->net_totals[i] : (struct net_totals){};
	out->net_why = out->has_net ? NULL : c->net_why;
	usage__netns(c, out);
	if (out->node->ident.kind == CG_CONTAINER) {
		const struct wlayer *w = wl_find(c, out->node->id);

		if (w && (w->tree || w->from_ckpt)) {
			out->upperdir = w->upperdir;
			out->layer = w->usage;
			out->layer_verified = w->tree != NULL;
			out->image = w->image;
			out->nimage = w->nimage;
		} else {
			out->layer_why = w ? w->why : "not looked up";
		}
	}
}

const struct cg_node *collector__node(const struct collector *c, size_t i)
{
	const struct cg_tree *t = &c->gen[c->cur].tree;

	return i < t->n ? &t->nodes[i] : &c->gone[i - t->n].node;
}

const struct cpu_sample *collector__cpu_sample(const struct collector *c)
{
	return &c->gen[c->cur].cpu;
}

struct tally_cpu *collector__cpu(struct collector *c)
{
	return c->cpu;
}

struct disk *collector__disk(struct collector *c)
{
	return c->disk;
}

struct tally_net *collector__net(struct collector *c)
{
	return c->net;
}

struct podnet *collector__podnet(struct collector *c)
{
	return c->pods;
}

const char *collector__net_error(const struct collector *c)
{
	if (!c->net)
		return c->net_why;
	return c->pods ? NULL : c->pods_why;
}

const struct net_sample *collector__net_sample(const struct collector *c)
{
	const struct generation *g = &c->gen[c->cur];

	return c->net && g->valid && g->net_totals ? &g->net : NULL;
}

int collector__background_layers(struct collector *c, const char *state_dir, size_t *bad)
{
	int err = 0;

	*bad = 0;
	if (!c->disk || c->scans)
		return 0;
	c->scans = scanq__new(c->disk);
	if (!c->scans)
		return -errno;
	if (state_dir)
		err = ckpt__load(state_dir, &c->ckpt, bad);
	return err;
}

int collector__checkpoint(const struct collector *c, const char *state_dir)
{
	struct ckpt k = {};
	int err = 0;

	/* Verified numbers, and the checkpoint's own for trees still being walked. */
	for (size_t i = 0; !err && i < c->nwl; i++) {
		const struct wlayer *w = &c->wl[i];

		if (w->upperdir && (w->tree || w->from_ckpt))
			err = ckpt__add(&k, w->cgid, w->upperdir, &w->usage);
	}
	if (!err)
		err = ckpt__save(state_dir, &k);
	ckpt__free(&k);
	return err;
}

unsigned collector__layers_walking(const struct collector *c)
{
	return c->scans ? scanq__pending(c->scans) : 0;
}
