// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `tally agent` under churn: 1,000 simulated containers (docker-named cgroups, each with a
 * process; one in ten with an overlay writable layer, one in twenty with its own network
 * namespace and veth) are created and removed in batches while a real agent collects every
 * 20 ms. Each batch is removed only once the agent has shown every container of it (and its
 * writable layer, and tc on its veth). Afterwards each claim is checked against a truth of
 * its own: the agent's memory and fds in /proc, its BPF maps read from the kernel through
 * the map ids in /proc/<pid>/fdinfo, its JSON through python3, its /metrics against the
 * kernel's maps, /proc's overlay mounts and /sys/class/net, and its log line by line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <linux/bpf.h>

#include "agent_helpers.h"
#include "disk_helpers.h"
#include "helpers.h"
#include "net_helpers.h"

#define CYCLES	      1000
#define BATCH	      20
#define WARMUP	      100
#define OVERLAY_EVERY 10 /* container i has a writable layer when i % 10 == 5 */
#define VETH_EVERY    20 /* and its own netns + veth when i % 20 == 0: 50 of 1,000 */
#define PERIOD_MS     20
/* Every tc attach waits for an RCU grace period: keep the veth share small. */
#define N_VETHS (CYCLES / VETH_EVERY)

/*
 * Memory, measured on this machine (plain build of the agent, 20 ms period, 7 runs): about
 * 7.3-7.6 MiB after the warm-up, then a creep of 0.1-0.2 MiB over the remaining 900 cycles
 * that slows down (heap high-water marks, as collections vary), and in 3 of the 7 runs one
 * step of 2.0-2.2 MiB within a single batch, never twice in a run, flat after it (the heap
 * grown once for one large allocation, not a leak). So two bounds: the end at most 3 MiB
 * above the warm-up (the step and the creep, with room); and over the last 500 cycles,
 * without the largest one-batch step, at most 256 KiB: a leak as small as 512 bytes per
 * container (a path, a sample, a tree index each take more) grows by that much there.
 */
#define RSS_GROWTH_MAX_KB 3072
#define RSS_CREEP_MAX_KB  256

struct ctr {
	char id[65];
	const char *cg; /* owned by helpers.c */
	uint64_t cgid;
	pid_t pid;
	bool overlay, veth;
	struct dh_overlay o;
	struct nh_link l;
};

/* What the test made and removed, to look for in the agent afterwards. */
static uint64_t cgids[CYCLES + 1];
static int n_cgids;
static int ifindexes[N_VETHS];
static int n_ifindexes;
static unsigned long long netns_inos[N_VETHS];
static int n_netns;
static char upper_prefix[64]; /* "/tmp/tally-test-churn-<pid>-": every overlay of this test */

static void fini(void)
{
	ah_cleanup(); /* the agent first: it detaches tc before the veths go */
	th_cleanup();
	dh_cleanup();
	nh_cleanup();
}

/* ASan in the test process makes forks slower; a plain run takes about a minute. */
TestSuite(churn, .fini = fini, .timeout = 400);

/* ---- the container side ---- */

struct rootfs_child {
	const char *root;
	int ready;
};

/* A container process whose root is the overlay: it writes into the writable layer first. */
static void overlay_main(void *arg)
{
	struct rootfs_child *c = arg;
	FILE *f;

	if (chroot(c->root) || chdir("/"))
		_exit(1);
	f = fopen("/written-by-container", "w");
	if (!f || fprintf(f, "%0*d", 3000, 7) < 0 || fclose(f))
		_exit(1);
	if (write(c->ready, "x", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static const char *test_top(void)
{
	return th_test_cgroup("churn");
}

static void ctr_create(struct ctr *c, int i)
{
	const char *top = test_top() + strlen(th_cgroot()) + 1;
	char rel[512];

	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id),
		 "c4a7%08x%04x0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef", (unsigned)getpid(),
		 (unsigned)i);
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, c->id);
	c->cg = th_cgroup_create(rel);
	c->cgid = th_cgroup_id(c->cg);
	cr_assert_lt(n_cgids, CYCLES + 1);
	cgids[n_cgids++] = c->cgid;
	c->overlay = i % OVERLAY_EVERY == OVERLAY_EVERY / 2;
	c->veth = i % VETH_EVERY == 0;
	if (c->overlay) {
		struct rootfs_child rc;
		char b;
		int p[2];

		dh_overlay_prepare(&c->o, "churn");
		dh_overlay_mount(&c->o);
		cr_assert_eq(pipe(p), 0);
		rc = (struct rootfs_child){.root = c->o.merged, .ready = p[1]};
		/*
		 * Into its own cgroup only once its root is the overlay. runc joins the cgroup
		 * first, which tally does not handle yet: a collection between the join and the
		 * chroot settles "not overlay" for good (see src/collect.c wl_lookup).
		 */
		c->pid = th_child_start(test_top(), overlay_main, &rc);
		close(p[1]);
		cr_assert_eq(read(p[0], &b, 1), 1, "the overlay container failed to start");
		close(p[0]);
		cr_assert_eq(th_cgroup_enter(c->cg, c->pid), 0, "enter %s", c->cg);
	} else if (c->veth) {
		int k = i / VETH_EVERY;
		char name[32], tag[3] = {(char)('a' + k / 26), (char)('a' + k % 26), 0};
		struct stat st;

		snprintf(name, sizeof(name), "churn%d", k);
		nh_link_create(&c->l, name, tag);
		cr_assert_lt(n_ifindexes, N_VETHS);
		ifindexes[n_ifindexes++] = c->l.host_ifindex;
		snprintf(rel, sizeof(rel), "/run/netns/%s", c->l.ns);
		cr_assert_eq(stat(rel, &st), 0, "stat %s: %s", rel, strerror(errno));
		netns_inos[n_netns++] = (unsigned long long)st.st_ino;
		c->pid = nh_sleeper_start(c->cg, c->l.ns);
	} else {
		c->pid = nh_sleeper_start(c->cg, NULL);
	}
}

/* As a runtime does: the process dies, the cgroup goes, the rootfs and its layer go. */
static void ctr_remove(struct ctr *c)
{
	int err = 0;

	th_child_stop(c->pid);
	/* The reaped task leaves its cgroup a moment later. */
	for (int i = 0; i < 200 && (err = th_cgroup_remove(c->cg)) == -EBUSY; i++)
		th_sleep_ms(5);
	cr_assert_eq(err, 0, "rmdir %s: %s", c->cg, strerror(-err));
	if (c->veth) {
		const char *argv[] = {"ip", "netns", "del", c->l.ns, NULL};

		nh_link_delete(&c->l);
		cr_assert_eq(nh_run(argv), 0, "ip netns del %s", c->l.ns);
	}
	if (c->overlay)
		dh_overlay_remove(&c->o);
}

/* ---- the agent, seen from /proc and the kernel ---- */

/* One fd of the agent's: what it points at, and its fdinfo. */
struct agent_fd {
	char target[256];
	char info[1024];
};

/* Every fd of the agent, read from /proc; returns how many (at most max). */
static int agent_fds(const struct agent *a, struct agent_fd *fds, int max)
{
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)a->pid);
	d = opendir(path);
	cr_assert_not_null(d, "%s: %s", path, strerror(errno));
	while ((de = readdir(d)) && n < max) {
		struct agent_fd *f = &fds[n];
		ssize_t len;
		FILE *fi;
		size_t got;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)a->pid, de->d_name);
		len = readlink(path, f->target, sizeof(f->target) - 1);
		if (len < 0)
			continue; /* closed since the listing */
		f->target[len] = '\0';
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)a->pid, de->d_name);
		fi = fopen(path, "r");
		if (!fi)
			continue;
		got = fread(f->info, 1, sizeof(f->info) - 1, fi);
		fclose(fi);
		f->info[got] = '\0';
		n++;
	}
	closedir(d);
	return n;
}

struct agent_usage {
	long rss_kb;
	int fds;
	char (*targets)[256]; /* what each fd points at, sorted; freed by usage_free */
};

static int target_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static long rss_kb(const struct agent *a)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)a->pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	fclose(f);
	cr_assert_gt(kb, 0, "no VmRSS in %s", path);
	return kb;
}

static void usage_read(const struct agent *a, struct agent_usage *u)
{
	static struct agent_fd fds[4096];

	/* The agent closes a finished HTTP connection a moment after the client saw it end. */
	th_sleep_ms(5 * PERIOD_MS);
	*u = (struct agent_usage){.rss_kb = rss_kb(a)};
	u->fds = agent_fds(a, fds, 4096);
	u->targets = calloc(u->fds + 1, sizeof(*u->targets));
	cr_assert_not_null(u->targets);
	for (int i = 0; i < u->fds; i++)
		memcpy(u->targets[i], fds[i].target, sizeof(u->targets[i]));
	qsort(u->targets, u->fds, sizeof(*u->targets), target_cmp);
}

/*
 * An fd kept for one container or device: a directory (a cgroup, a writable layer), a
 * network namespace, a tc link. Other tests on the node add such fds for their own
 * containers; ours are looked for by identity (expect_no_fd_on_removed).
 */
static bool per_container_fd(const char *target)
{
	return target[0] == '/' || !strncmp(target, "net:[", 5) ||
	       !strcmp(target, "anon_inode:bpf_link");
}

/*
 * The fds in after that before did not have (as a multiset), one per line into buf; how
 * many of them are of a kind that must not grow (not per_container_fd) into *general.
 */
static const char *usage_new_fds(const struct agent_usage *before, const struct agent_usage *after,
				 int *general, char *buf, size_t len)
{
	size_t off = 0;
	int i = 0, j = 0;

	buf[0] = '\0';
	*general = 0;
	while (j < after->fds) {
		int c = i < before->fds ? strcmp(before->targets[i], after->targets[j]) : 1;

		if (c < 0) {
			i++;
			continue;
		}
		if (c > 0) {
			if (off < len)
				off += snprintf(buf + off, len - off, "\n  %s", after->targets[j]);
			if (!per_container_fd(after->targets[j]))
				(*general)++;
		}
		if (c == 0)
			i++;
		j++;
	}
	return buf;
}

static void usage_free(struct agent_usage *u)
{
	free(u->targets);
	u->targets = NULL;
}

static long long info_field(const char *info, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "%s:\t", key);
	p = strstr(info, k);
	if (p && p != info && p[-1] != '\n')
		p = NULL;
	return p ? atoll(p + strlen(k)) : -1;
}

struct agent_map {
	char name[BPF_OBJ_NAME_LEN];
	uint32_t id, key_size, max_entries;
};

/* The agent's BPF maps, by the ids the kernel shows in its fdinfo (each id once). */
static int agent_maps(const struct agent *a, struct agent_map *maps, int max)
{
	static struct agent_fd fds[4096];
	int n_fds = agent_fds(a, fds, 4096), n = 0;

	for (int i = 0; i < n_fds; i++) {
		long long id = info_field(fds[i].info, "map_id");
		struct bpf_map_info info = {};
		uint32_t len = sizeof(info);
		bool dup = false;
		int fd;

		if (id <= 0)
			continue;
		for (int j = 0; j < n; j++)
			dup = dup || maps[j].id == (uint32_t)id;
		if (dup)
			continue;
		fd = bpf_map_get_fd_by_id((uint32_t)id);
		cr_assert_geq(fd, 0, "map id %lld of the agent: %s", id, strerror(errno));
		cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
		close(fd);
		cr_assert_lt(n, max);
		snprintf(maps[n].name, sizeof(maps[n].name), "%s", info.name);
		maps[n].id = info.id;
		maps[n].key_size = info.key_size;
		maps[n].max_entries = info.max_entries;
		n++;
	}
	return n;
}

static const struct agent_map *map_named(const struct agent_map *maps, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(maps[i].name, name))
			return &maps[i];
	cr_assert_fail("the agent holds no map named %s", name);
	return NULL;
}

/*
 * The keys (4 or 8 bytes, as numbers) of a map, read now. Entries deleted while we walk
 * can restart the walk, hence the bound and the caller's tolerance of duplicates.
 */
static size_t map_keys(const struct agent_map *m, uint64_t **out)
{
	size_t n = 0, cap = 4 * (size_t)m->max_entries + 16;
	uint64_t *keys = calloc(cap, sizeof(*keys));
	unsigned char key[8] = {}, next[8] = {};
	bool first = true;
	int fd = bpf_map_get_fd_by_id(m->id);

	cr_assert_not_null(keys);
	cr_assert_geq(fd, 0, "map %s (id %u): %s", m->name, m->id, strerror(errno));
	cr_assert(m->key_size == 4 || m->key_size == 8, "map %s: key size %u", m->name,
		  m->key_size);
	while (n < cap && !bpf_map_get_next_key(fd, first ? NULL : key, next)) {
		uint64_t v = 0;

		first = false;
		memcpy(key, next, m->key_size);
		if (m->key_size == 4) {
			uint32_t v32;

			memcpy(&v32, next, 4);
			v = v32;
		} else {
			memcpy(&v, next, 8);
		}
		keys[n++] = v;
	}
	close(fd);
	*out = keys;
	return n;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Distinct keys of the map, and how many of them are in the sorted set mine. */
static size_t map_count(const struct agent_map *m, const uint64_t *mine, size_t n_mine,
			size_t *of_mine, uint64_t *example)
{
	uint64_t *keys;
	size_t n = map_keys(m, &keys), distinct = 0;

	qsort(keys, n, sizeof(*keys), u64_cmp);
	*of_mine = 0;
	for (size_t i = 0; i < n; i++) {
		if (i && keys[i] == keys[i - 1])
			continue;
		distinct++;
		if (mine && bsearch(&keys[i], mine, n_mine, sizeof(*mine), u64_cmp)) {
			if (!*of_mine && example)
				*example = keys[i];
			(*of_mine)++;
		}
	}
	free(keys);
	return distinct;
}

static bool map_has(const struct agent_map *m, uint64_t key)
{
	size_t mine;

	map_count(m, &key, 1, &mine, NULL);
	return mine > 0;
}

/* ---- the agent's HTTP side ---- */

/* The value of the series whose line starts with series (name and labels) and a space. */
static long long metric(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return atoll(p + n + 1);
	return -1;
}

struct agent_metrics {
	long long collections, disk_trees, cg_cpu, cg_net, if_net;
};

static void metrics_read(const struct agent *a, struct agent_metrics *m)
{
	struct resp r;

	http_get(a, "/metrics", NULL, &r);
	cr_assert_eq(r.status, 200, "GET /metrics: %s", r.raw);
	m->collections = metric(r.body, "tally_collections_total");
	m->disk_trees = metric(r.body, "tally_disk_trees");
	m->cg_cpu = metric(r.body, "tally_bpf_map_entries{map=\"cg_cpu\"}");
	m->cg_net = metric(r.body, "tally_bpf_map_entries{map=\"cg_net\"}");
	m->if_net = metric(r.body, "tally_bpf_map_entries{map=\"if_net\"}");
	cr_assert(m->collections > 0 && m->disk_trees >= 0 && m->cg_cpu >= 0 && m->cg_net >= 0 &&
		      m->if_net >= 0,
		  "a series is missing from /metrics:\n%s", r.body);
	resp_free(&r);
}

/* Wait (bounded) until the agent completed n more collections than now. */
static void wait_collections(const struct agent *a, int n)
{
	struct agent_metrics m;
	long long start;

	metrics_read(a, &m);
	start = m.collections;
	for (int i = 0; i < 3000; i++) {
		th_sleep_ms(PERIOD_MS / 2);
		metrics_read(a, &m);
		if (m.collections >= start + n)
			return;
	}
	cr_assert_fail("the agent made %lld collections in 30 s, not %d", m.collections - start, n);
}

/*
 * Wait (bounded) until the agent showed every container of the batch: listed in
 * /v1/containers, with its writable layer, and with the agent's tc counters on its veth.
 */
static void wait_seen(const struct agent *a, struct ctr *batch, int n)
{
	struct agent_map maps[64];
	const struct agent_map *if_net;
	const char *missing = NULL;
	int n_maps = agent_maps(a, maps, 64), who = 0;
	struct resp r = {};

	if_net = map_named(maps, n_maps, "if_net");
	for (int tries = 0; tries < 1000; tries++) {
		resp_free(&r);
		http_get(a, "/v1/containers", NULL, &r);
		cr_assert_eq(r.status, 200, "GET /v1/containers: %s", r.raw);
		missing = NULL;
		for (who = 0; who < n && !missing; who++) {
			if (!strstr(r.body, batch[who].id))
				missing = "listed";
			else if (batch[who].overlay && !strstr(r.body, batch[who].o.upper))
				missing = "with its writable layer";
			else if (batch[who].veth &&
				 !map_has(if_net, (uint64_t)batch[who].l.host_ifindex))
				missing = "with tc on its veth";
		}
		if (!missing) {
			resp_free(&r);
			return;
		}
		th_sleep_ms(PERIOD_MS);
	}
	{
		const struct ctr *c = &batch[who - 1];
		const char *at = strstr(r.body, c->id);

		cr_assert_fail(
		    "%s (overlay %s) was never shown %s in 20 s; the agent says: %.1500s", c->id,
		    c->overlay ? c->o.upper : "none", missing, at ? at : "nothing");
	}
}

/* ---- the node's own counts, for what other tests running meanwhile add ---- */

/* Distinct upperdirs of overlay mounts that are some process's root: the node's layers. */
static int node_overlay_roots(void)
{
	static char uppers[4096][256];
	int n = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		char path[PATH_MAX], line[4096];
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/mountinfo", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char mnt[256] = "", *sep = strstr(line, " - overlay "), *up, *end;
			bool dup = false;

			if (!sep || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
			    strcmp(mnt, "/"))
				continue;
			up = strstr(sep, "upperdir=");
			if (!up)
				continue;
			up += strlen("upperdir=");
			end = up + strcspn(up, ",\n");
			*end = '\0';
			for (int i = 0; i < n && !dup; i++)
				dup = !strcmp(uppers[i], up);
			if (!dup && n < 4096)
				snprintf(uppers[n++], sizeof(uppers[0]), "%s", up);
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/* ---- the log ---- */

/* Lines of the agent's log that are errors (no level word), and warnings. */
static void log_levels(const struct agent *a, int *errors, int *warnings, char *first, size_t len)
{
	static char buf[4 << 20];

	read_log(a, buf, sizeof(buf));
	*errors = *warnings = 0;
	first[0] = '\0';
	for (char *line = buf, *eol; *line; line = eol ? eol + 1 : line + strlen(line)) {
		eol = strchr(line, '\n');
		if (eol)
			*eol = '\0';
		if (!strncmp(line, "tally: warning: ", 16)) {
			(*warnings)++;
		} else if (strncmp(line, "tally: info: ", 13) &&
			   strncmp(line, "tally: debug: ", 14)) {
			if (!*errors)
				snprintf(first, len, "%.*s", (int)(len - 1), line);
			(*errors)++;
		}
		if (!eol)
			break;
	}
}

/* ---- the test ---- */

static struct ctr batch[BATCH];

static void run_batch(const struct agent *a, int first, int n)
{
	for (int i = 0; i < n; i++)
		ctr_create(&batch[i], first + i);
	wait_seen(a, batch, n);
	for (int i = 0; i < n; i++)
		ctr_remove(&batch[i]);
}

/* The agent still holds no fd on anything the test removed. */
static void expect_no_fd_on_removed(const struct agent *a)
{
	static struct agent_fd fds[4096];
	int n = agent_fds(a, fds, 4096);
	char top[PATH_MAX];

	/* The top cgroup itself is still there: only what is below it is gone. */
	snprintf(top, sizeof(top), "%s/", test_top());
	for (int i = 0; i < n; i++) {
		long long ifindex = info_field(fds[i].info, "ifindex");
		unsigned long long ino;

		cr_expect(strncmp(fds[i].target, top, strlen(top)),
			  "the agent keeps an fd on a removed cgroup: %s", fds[i].target);
		cr_expect(strncmp(fds[i].target, upper_prefix, strlen(upper_prefix)),
			  "the agent keeps an fd on a removed writable layer: %s", fds[i].target);
		if (sscanf(fds[i].target, "net:[%llu]", &ino) == 1)
			for (int j = 0; j < n_netns; j++)
				cr_expect_neq(ino, netns_inos[j],
					      "the agent keeps the netns of a removed container");
		if (ifindex > 0 && !strncmp(fds[i].target, "anon_inode:bpf_link", 19))
			for (int j = 0; j < n_ifindexes; j++)
				cr_expect_neq(ifindex, ifindexes[j],
					      "the agent keeps a tc link on the removed device %d",
					      ifindexes[j]);
	}
}

Test(churn, thousand_containers_leave_flat_memory_and_empty_maps)
{
	char out[8192], script[1024], first_err[512], fd_diff[4096];
	struct agent_metrics base, end;
	struct agent_usage warm, mid, last;
	long rss[CYCLES / BATCH];
	struct agent_map maps[64];
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), *mine_cg, *mine_if, example = 0;
	size_t k_base_cpu, k_base_net, k_base_if, k_end_cpu = 0, k_end_net = 0, k_end_if, of_mine;
	int n_maps, errors, warnings, ov_base, ov_end, general_fds;
	struct agent a;
	struct resp r;

	snprintf(upper_prefix, sizeof(upper_prefix), "/tmp/tally-test-churn-%d-", (int)getpid());
	test_top();
	agent_start(&a, "--period 20ms");

	/*
	 * A primer container first: the removal folds its counters into the test's top cgroup,
	 * which gets its own cg_cpu entry then, once, and is no leak. The baseline follows.
	 */
	run_batch(&a, CYCLES + 1, 1); /* a plain one: no veth or layer */
	wait_collections(&a, 3);
	metrics_read(&a, &base);
	n_maps = agent_maps(&a, maps, 64);
	k_base_cpu = map_count(map_named(maps, n_maps, "cg_cpu"), NULL, 0, &of_mine, NULL);
	k_base_net = map_count(map_named(maps, n_maps, "cg_net"), NULL, 0, &of_mine, NULL);
	k_base_if = map_count(map_named(maps, n_maps, "if_net"), NULL, 0, &of_mine, NULL);
	ov_base = node_overlay_roots();

	for (int first = 0; first < CYCLES; first += BATCH) {
		run_batch(&a, first, BATCH);
		rss[first / BATCH] = rss_kb(&a);
		if (first + BATCH == WARMUP || first + BATCH == CYCLES / 2) {
			wait_collections(&a, 3);
			usage_read(&a, first + BATCH == WARMUP ? &warm : &mid);
		}
	}
	/* A removed container stays for one more period: three are enough for it to go. */
	wait_collections(&a, 3);
	usage_read(&a, &last);
	cr_log_info("churn: %d cycles in %.1f s; agent RSS %ld KiB after %d, %ld KiB after %d, "
		    "%ld KiB after %d; fds %d, %d, %d",
		    CYCLES, (now_ns(CLOCK_MONOTONIC) - t0) / 1e9, warm.rss_kb, WARMUP, mid.rss_kb,
		    CYCLES / 2, last.rss_kb, CYCLES, warm.fds, mid.fds, last.fds);

	/* Memory and fds: flat. */
	cr_expect_leq(last.rss_kb, warm.rss_kb + RSS_GROWTH_MAX_KB,
		      "agent RSS grew from %ld KiB after %d cycles to %ld KiB after %d",
		      warm.rss_kb, WARMUP, last.rss_kb, CYCLES);
	{
		long step = 0, creep;

		for (int i = CYCLES / BATCH / 2; i < CYCLES / BATCH; i++)
			if (rss[i] - rss[i - 1] > step)
				step = rss[i] - rss[i - 1];
		creep = rss[CYCLES / BATCH - 1] - rss[CYCLES / BATCH / 2 - 1] - step;
		cr_log_info("churn: RSS over the last %d cycles: +%ld KiB, largest step %ld KiB",
			    CYCLES / 2, creep + step, step);
		cr_expect_leq(
		    creep, RSS_CREEP_MAX_KB,
		    "agent RSS crept by %ld KiB over the last %d cycles (not counting its "
		    "largest one-batch step, %ld KiB)",
		    creep, CYCLES / 2, step);
	}
	/*
	 * The same fds as after the warm-up, but for those of other tests' containers that came
	 * or went meanwhile: on a quiet node, exactly the same.
	 */
	usage_new_fds(&warm, &last, &general_fds, fd_diff, sizeof(fd_diff));
	cr_expect_eq(general_fds, 0, "agent fds: %d after %d cycles, %d after %d; new:%s", warm.fds,
		     WARMUP, last.fds, CYCLES, fd_diff);
	cr_log_info("churn: fds new since the warm-up:%s", fd_diff[0] ? fd_diff : " none");
	expect_no_fd_on_removed(&a);

	/* The kernel's maps, read through the agent's map ids: nothing of ours is left. */
	mine_cg = malloc(n_cgids * sizeof(*mine_cg));
	mine_if = malloc(N_VETHS * sizeof(*mine_if));
	cr_assert(mine_cg && mine_if);
	memcpy(mine_cg, cgids, n_cgids * sizeof(*mine_cg));
	qsort(mine_cg, n_cgids, sizeof(*mine_cg), u64_cmp);
	for (int i = 0; i < n_ifindexes; i++)
		mine_if[i] = (uint64_t)ifindexes[i];
	qsort(mine_if, n_ifindexes, sizeof(*mine_if), u64_cmp);
	cr_assert_eq(n_cgids, CYCLES + 1);
	cr_assert_eq(n_ifindexes, N_VETHS);
	n_maps = agent_maps(&a, maps, 64);
	{
		static const char *const cg_maps[] = {"cg_cpu", "cg_seed", "cg_net"};

		for (size_t i = 0; i < sizeof(cg_maps) / sizeof(cg_maps[0]); i++) {
			const struct agent_map *m = map_named(maps, n_maps, cg_maps[i]);
			size_t n = map_count(m, mine_cg, n_cgids, &of_mine, &example);

			cr_expect_eq(of_mine, 0,
				     "%s holds %zu entries of the %d removed cgroups (one: %llu), "
				     "of %zu",
				     cg_maps[i], of_mine, n_cgids, (unsigned long long)example, n);
			if (!strcmp(cg_maps[i], "cg_cpu"))
				k_end_cpu = n;
			if (!strcmp(cg_maps[i], "cg_net"))
				k_end_net = n;
		}
		k_end_if = map_count(map_named(maps, n_maps, "if_net"), mine_if, n_ifindexes,
				     &of_mine, &example);
		cr_expect_eq(of_mine, 0, "if_net holds %zu of the %d removed veths (one: %llu)",
			     of_mine, n_ifindexes, (unsigned long long)example);
		/* cg_gone is an LRU of removed cgroups by design: bounded, not checked for ours. */
		map_count(map_named(maps, n_maps, "cg_gone"), mine_cg, n_cgids, &of_mine, NULL);
		cr_log_info("churn: cg_gone holds %zu of the removed cgroups (an LRU, by design)",
			    of_mine);
	}

	/* The agent's own view: none of ours listed (python3 parses), counts back at base. */
	http_get(&a, "/v1/containers", NULL, &r);
	cr_assert_eq(r.status, 200, "%s", r.raw);
	snprintf(script, sizeof(script),
		 "import json,sys\n"
		 "d = json.load(sys.stdin)\n"
		 "assert isinstance(d, list), d\n"
		 "ours = [c['id'] for c in d if c['id'].startswith('c4a7%08x')\n"
		 "        or '/tally-test-churn-%d/' in c['cgroup']]\n"
		 "assert not ours, '%%d removed containers still listed: %%s' %% (len(ours), "
		 "ours[:3])\n",
		 (unsigned)getpid(), (int)getpid());
	cr_expect_eq(py(script, r.body, r.body_len, out, sizeof(out)), 0, "%s", out);
	resp_free(&r);

	/*
	 * Back at the baseline, give or take what other tests on this node added meanwhile:
	 * the kernel's own maps (ours are not in them, checked above) and the overlay roots in
	 * /proc say how much. On a quiet node both are 0 and the comparison is exact.
	 */
#define GROWTH(e, b) ((long long)(e) > (long long)(b) ? (long long)(e) - (long long)(b) : 0)
	for (int attempt = 0; attempt < 5; attempt++) {
		size_t k1_cpu, k1_net, k1_if, k2_cpu, k2_net, k2_if;
		int ov1, ov2;

		/* The node's counts on both sides of the scrape: the larger bounds it. */
		n_maps = agent_maps(&a, maps, 64);
		k1_cpu = map_count(map_named(maps, n_maps, "cg_cpu"), NULL, 0, &of_mine, NULL);
		k1_net = map_count(map_named(maps, n_maps, "cg_net"), NULL, 0, &of_mine, NULL);
		k1_if = map_count(map_named(maps, n_maps, "if_net"), NULL, 0, &of_mine, NULL);
		ov1 = node_overlay_roots();
		metrics_read(&a, &end);
		k2_cpu = map_count(map_named(maps, n_maps, "cg_cpu"), NULL, 0, &of_mine, NULL);
		k2_net = map_count(map_named(maps, n_maps, "cg_net"), NULL, 0, &of_mine, NULL);
		k2_if = map_count(map_named(maps, n_maps, "if_net"), NULL, 0, &of_mine, NULL);
		ov2 = node_overlay_roots();
		k_end_cpu = k1_cpu > k2_cpu ? k1_cpu : k2_cpu;
		k_end_net = k1_net > k2_net ? k1_net : k2_net;
		k_end_if = k1_if > k2_if ? k1_if : k2_if;
		ov_end = ov1 > ov2 ? ov1 : ov2;
		if (end.disk_trees <= base.disk_trees + GROWTH(ov_end, ov_base) &&
		    end.cg_cpu <= base.cg_cpu + GROWTH(k_end_cpu, k_base_cpu) &&
		    end.cg_net <= base.cg_net + GROWTH(k_end_net, k_base_net) &&
		    end.if_net <= base.if_net + GROWTH(k_end_if, k_base_if))
			break;
		/* Another test's cgroup came and went within the scrape: look again. */
		wait_collections(&a, 2);
	}
	cr_log_info("churn: base/end: disk_trees %lld/%lld (node overlay roots %d/%d), cg_cpu "
		    "%lld/%lld (kernel %zu/%zu), cg_net %lld/%lld (kernel %zu/%zu), if_net "
		    "%lld/%lld (kernel %zu/%zu)",
		    base.disk_trees, end.disk_trees, ov_base, ov_end, base.cg_cpu, end.cg_cpu,
		    k_base_cpu, k_end_cpu, base.cg_net, end.cg_net, k_base_net, k_end_net,
		    base.if_net, end.if_net, k_base_if, k_end_if);
	cr_expect_leq(end.disk_trees, base.disk_trees + GROWTH(ov_end, ov_base),
		      "tally_disk_trees %lld, %lld before the churn", end.disk_trees,
		      base.disk_trees);
	cr_expect_leq(end.cg_cpu, base.cg_cpu + GROWTH(k_end_cpu, k_base_cpu),
		      "tally_bpf_map_entries{map=cg_cpu} %lld, %lld before the churn", end.cg_cpu,
		      base.cg_cpu);
	cr_expect_leq(end.cg_net, base.cg_net + GROWTH(k_end_net, k_base_net),
		      "tally_bpf_map_entries{map=cg_net} %lld, %lld before the churn", end.cg_net,
		      base.cg_net);
	cr_expect_leq(end.if_net, base.if_net + GROWTH(k_end_if, k_base_if),
		      "tally_bpf_map_entries{map=if_net} %lld, %lld before the churn", end.if_net,
		      base.if_net);

#undef GROWTH

	/* A clean run: the log has no error line (every line has a level word but errors). */
	log_levels(&a, &errors, &warnings, first_err, sizeof(first_err));
	cr_expect_eq(errors, 0, "%d error lines in the agent's log, the first: %s", errors,
		     first_err);
	cr_log_info("churn: %d warnings in the agent's log", warnings);
	cr_expect_eq(agent_stop(&a, SIGTERM, 60000), 0);
	agent_kill(&a);
	free(mine_cg);
	free(mine_if);
	usage_free(&warm);
	usage_free(&mid);
	usage_free(&last);
}
