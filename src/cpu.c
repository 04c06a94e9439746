// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The CPU path, userspace side. See bpf/cpu.bpf.c for what the kernel side counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tally/cpu.h"
#include "bpfmap.h"
#include "cpu.h"
#include "cpu.skel.h"
#include "pin.h"
#include "util.h"

struct tally_cpu {
	struct cpu_bpf *skel;
	int nr_cpus;
	uint32_t max_cgroups;
	bool raw_tp;
	bool removal;
	bool exit_hook;	    /* handle_process_exit(_raw) is attached, in the switch hook's tier */
	bool tree;	    /* tree_changes counts (see cpu__tree_changes) */
	uint64_t untracked; /* what cpu__tree_changes returns without it: never the same twice */
	bool pinned;
	struct pin pin;
	char replaced[PATH_MAX]; /* a stale layout's directory, removed after attach */
	struct bpfmap_reader counters; /* of cg_cpu */
	/* read buffers, reused */
	struct cpu_running *running, *running_before;
	/* cpu__prune: ids absent from the previous walk, sorted */
	uint64_t *absent;
	size_t n_absent;
};

/*
 * Each CPU's running task into its record (adopt_running in bpf/cpu.bpf.c), so the time it
 * runs from now on is counted even before its first switch. Best effort: a kernel without
 * BPF_F_TEST_RUN_ON_CPU (5.10) counts from the first switch seen, as before.
 */
static void adopt_running(struct cpu_bpf *skel, int nr_cpus)
{
	int fd = bpf_program__fd(skel->progs.adopt_running);

	for (int cpu = 0; cpu < nr_cpus; cpu++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = cpu);

		/* An offline CPU (ENXIO) has nothing running. */
		if (bpf_prog_test_run_opts(fd, &opts) == -EINVAL)
			return;
	}
}

static int cpu__load(struct tally_cpu *c, const struct cpu_opts *opts, bool raw_tp)
{
	struct cpu_bpf *skel;
	int err;

	skel = cpu_bpf__open();
	if (!skel)
		return -errno;
	skel->rodata->nr_cpus = c->nr_cpus;
	skel->rodata->rollup_levels = opts->rollup_levels;
	skel->rodata->tree_root_id = opts->tree_root;
	err = bpf_map__set_max_entries(skel->maps.cg_cpu, c->max_cgroups);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.cg_seed, c->max_cgroups);
	if (err)
		goto fail;
	bpf_program__set_autoload(skel->progs.handle_sched_switch, !raw_tp);
	bpf_program__set_autoload(skel->progs.handle_sched_switch_raw, raw_tp);
	bpf_program__set_autoload(skel->progs.handle_cgroup_rmdir, c->removal);
	bpf_program__set_autoload(skel->progs.handle_cgroup_mkdir, c->tree);
	bpf_program__set_autoload(skel->progs.handle_cgroup_rename, c->tree);
	bpf_program__set_autoload(skel->progs.handle_process_exit, !raw_tp && c->exit_hook);
	bpf_program__set_autoload(skel->progs.handle_process_exit_raw, raw_tp && c->exit_hook);
	/* Same helper (bpf_map_lookup_percpu_elem) as the removal handler. */
	bpf_program__set_autoload(skel->progs.read_clocks, c->removal);
	bpf_program__set_autoattach(skel->progs.read_clocks, false);
	bpf_program__set_autoload(skel->progs.adopt_running, c->removal);
	bpf_program__set_autoattach(skel->progs.adopt_running, false);
	if (opts->pin_root) {
		uint64_t settings[] = {c->nr_cpus,	opts->rollup_levels, c->max_cgroups,
				       raw_tp,		c->removal,	     c->tree,
				       opts->tree_root, c->exit_hook};
		size_t len;
		const void *elf = cpu_bpf__elf_bytes(&len);

		err = pin__open(&c->pin, opts->pin_root, "cpu",
				pin__layout(elf, len, settings, ARRAY_SIZE(settings)));
		if (!err)
			err = pin__maps(&c->pin, skel->obj);
		if (err)
			goto fail;
	}
	err = cpu_bpf__load(skel);
	if (err)
		goto fail;
	err = opts->pin_root ? pin__attach_skeleton(&c->pin, skel->skeleton)
			     : cpu_bpf__attach(skel);
	if (err)
		goto fail;
	if (c->removal)
		adopt_running(skel, c->nr_cpus);
	/* The new programs count now: a previous layout's can go, with its counters. */
	while (opts->pin_root && pin__next_stale(&c->pin, c->replaced, sizeof(c->replaced))) {
		err = pin__remove_dir(c->replaced);
		if (err)
			goto fail;
	}
	c->pinned = opts->pin_root != NULL;
	c->skel = skel;
	c->raw_tp = raw_tp;
	return 0;
fail:
	cpu_bpf__destroy(skel);
	/* A directory this load created holds nothing a later load could use. */
	if (opts->pin_root && !c->pin.reused && c->pin.dir[0])
		pin__remove_dir(c->pin.dir);
	return err < 0 ? err : -EINVAL;
}

struct tally_cpu *cpu__open(const struct cpu_opts *opts)
{
	static const struct cpu_opts defaults;
	struct tally_cpu *c = NULL;
	int err;

	if (!opts)
		opts = &defaults;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->nr_cpus = libbpf_num_possible_cpus();
	if (c->nr_cpus <= 0) {
		err = c->nr_cpus ? c->nr_cpus : -EINVAL;
		goto fail;
	}
	if (c->nr_cpus > TALLY_CPU_MAX_CPUS) {
		err = -E2BIG;
		goto fail;
	}
	c->max_cgroups = opts->max_cgroups ? opts->max_cgroups : TALLY_CPU_DEFAULT_MAX_CGROUPS;
	/* Folding a removed cgroup into its parent; without it cpu__prune reconciles from walks. */
	c->removal = bpfmap__has_percpu_lookup();
	/* The removal handler counts the removals: without it the count would miss them. */
	c->tree = c->removal && !opts->force_walks;
	for (;;) {
		err = -EINVAL;
		/*
		 * tp_btf, then raw_tp, each with the exit hook and then without it: the hook makes
		 * a killed task's last stretch its cgroup's, but tp_btf's cheaper switches matter
		 * more. EPERM will not improve with another program type: report it as is.
		 */
		for (int raw = opts->force_raw_tp; raw < 2 && err && err != -EPERM; raw++) {
			for (int hook = 1; hook >= 0 && err && err != -EPERM; hook--) {
				c->exit_hook = hook;
				err = cpu__load(c, opts, raw);
			}
		}
		if (!err || err == -EPERM || !c->tree)
			break;
		/* Counting tree changes is an optimisation: without it, walk every time. */
		c->tree = false;
	}
	if (err)
		goto fail;
	err = bpfmap_reader__init(&c->counters, bpf_map__fd(c->skel->maps.cg_cpu), c->nr_cpus,
				  sizeof(struct cpu_counter) / sizeof(uint64_t), c->max_cgroups,
				  !opts->force_no_batch);
	if (err)
		goto fail;
	c->running = calloc(c->nr_cpus, sizeof(*c->running));
	c->running_before = calloc(c->nr_cpus, sizeof(*c->running_before));
	if (!c->running || !c->running_before) {
		err = -ENOMEM;
		goto fail;
	}
	return c;
fail:
	cpu__free(c);
	errno = -err;
	return NULL;
}

void cpu__free(struct tally_cpu *c)
{
	if (!c)
		return;
	cpu_bpf__destroy(c->skel);
	bpfmap_reader__fini(&c->counters);
	free(c->running);
	free(c->running_before);
	free(c->absent);
	free(c);
}

bool cpu__resumed(const struct tally_cpu *c)
{
	return c->pinned && c->pin.reused;
}

const char *cpu__replaced(const struct tally_cpu *c)
{
	return c->replaced;
}

int cpu__seed_get(struct tally_cpu *c, uint64_t cgid, uint64_t *ns)
{
	return bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.cg_seed), &cgid, ns) ? -errno : 0;
}

int cpu__seed_put(struct tally_cpu *c, uint64_t cgid, uint64_t ns)
{
	return bpf_map_update_elem(bpf_map__fd(c->skel->maps.cg_seed), &cgid, &ns, BPF_ANY)
		   ? -errno
		   : 0;
}

int cpu__seed_del(struct tally_cpu *c, uint64_t cgid)
{
	if (!bpf_map_delete_elem(bpf_map__fd(c->skel->maps.cg_seed), &cgid) || errno == ENOENT)
		return 0;
	return -errno;
}

struct seed_keep {
	bool (*present)(uint64_t id, void *ctx);
	void *ctx;
};

static bool seed__keep(const void *key, void *ctx)
{
	struct seed_keep *k = ctx;

	return k->present(*(const uint64_t *)key, k->ctx);
}

int cpu__seed_prune(struct tally_cpu *c, bool (*present)(uint64_t id, void *ctx), void *ctx)
{
	struct seed_keep k = {.present = present, .ctx = ctx};

	return bpfmap__prune(bpf_map__fd(c->skel->maps.cg_seed), sizeof(uint64_t), seed__keep, &k);
}

static int sample__reserve(struct cpu_sample *s, size_t n)
{
	struct cpu_entry *e;
	size_t cap;

	if (n <= s->cap)
		return 0;
	cap = s->cap ? s->cap : 64;
	while (cap < n)
		cap *= 2;
	e = realloc(s->e, cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	s->e = e;
	s->cap = cap;
	return 0;
}

static int sample__add(struct cpu_sample *s, uint64_t cgid, const struct cpu_counter *v)
{
	struct cpu_entry *e;
	int err;

	err = sample__reserve(s, s->n + 1);
	if (err)
		return err;
	e = &s->e[s->n++];
	e->cgid = cgid;
	e->time_ns = v->time_ns;
	e->inflight_ns = 0;
	e->switches = v->switches;
	return 0;
}

/* bpfmap_add_fn: one cgroup's counters, summed over CPUs, in struct cpu_counter's order. */
static int sample__add_sum(void *ctx, uint64_t cgid, const uint64_t *sum)
{
	struct cpu_counter v;

	memcpy(&v, sum, sizeof(v));
	return sample__add(ctx, cgid, &v);
}

/* Sum adjacent entries of one cgroup (sorted sample) into one. */
static void sample__merge_equal(struct cpu_sample *s)
{
	size_t out = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (out && s->e[out - 1].cgid == s->e[i].cgid) {
			s->e[out - 1].time_ns += s->e[i].time_ns;
			s->e[out - 1].inflight_ns += s->e[i].inflight_ns;
			s->e[out - 1].switches += s->e[i].switches;
		} else {
			s->e[out++] = s->e[i];
		}
	}
	s->n = out;
}

const struct cpu_entry *cpu_sample__find(const struct cpu_sample *s, uint64_t cgid)
{
	struct cpu_entry key = {.cgid = cgid};

	if (!s->n)
		return NULL;
	return bsearch(&key, s->e, s->n, sizeof(*s->e), bpfmap__key_cmp);
}

static int read_counters(struct tally_cpu *c, struct cpu_sample *s)
{
	s->n = 0;
	return bpfmap_reader__read(&c->counters, sample__add_sum, s);
}

/*
 * Every running task's run-queue clocks into the .bss (c->skel->bss->rq_clocks), by running
 * the read_clocks program once. Without it they stay zero and in-flight time is wall-clock.
 */
static int read_rq_clocks(struct tally_cpu *c)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (!c->removal)
		return 0;
	return bpf_prog_test_run_opts(bpf_program__fd(c->skel->progs.read_clocks), &opts);
}

/*
 * Time a running task has been on its CPU since its switch, at now_ns: wall-clock time less
 * what its run queue's clocks say was stolen (or spent in interrupts) since the switch. What
 * was stolen after the queue's last clock update (a tick at most) cannot be seen.
 */
static uint64_t running__since_switch_ns(const struct cpu_running *r, const struct cpu_rq_clock *k,
					 uint64_t now_ns)
{
	uint64_t wall = now_ns - r->since_ns, stolen = 0;

	if (r->since_task_ns && k->task_ns >= r->since_task_ns && k->rq_ns >= r->since_rq_ns) {
		uint64_t rq = k->rq_ns - r->since_rq_ns, task = k->task_ns - r->since_task_ns;

		stolen = rq > task ? rq - task : 0;
	}
	return wall > stolen ? wall - stolen : 0;
}

/*
 * One CPU's in-flight part at now_ns, and whose it is (*cgid, 0: nobody's). Normally that of
 * the task seen switched in. When the task really on the CPU is another one (k->curr: its
 * switch-in was not seen), it is that task's stint as the kernel read it, and the task seen
 * switched in gets nothing: it left the CPU, unseen.
 */
uint64_t cpu__inflight_ns(const struct cpu_running *r, const struct cpu_rq_clock *k,
			  uint64_t now_ns, uint64_t *cgid)
{
	*cgid = 0;
	if (k->curr && k->curr != r->task) {
		*cgid = k->curr_cgid;
		return k->curr_cgid ? k->curr_stint_ns : 0;
	}
	if (!r->cgid || !r->since_ns || r->since_ns >= now_ns)
		return 0;
	*cgid = r->cgid;
	return running__since_switch_ns(r, k, now_ns);
}

/* A task that was on a CPU before the counter read switched out during it. */
static bool running__moved(const struct cpu_running *before, const struct cpu_running *after,
			   int nr_cpus)
{
	for (int i = 0; i < nr_cpus; i++)
		if (before[i].cgid && before[i].since_ns != after[i].since_ns)
			return true;
	return false;
}

/* Attempts at a read during which no running task switched out; see cpu__read. */
#define CPU_READ_ATTEMPTS 8

int cpu__read(struct tally_cpu *c, struct cpu_sample *s)
{
	int fd_running = bpf_map__fd(c->skel->maps.cpu_running);
	uint32_t zero = 0;
	int err;

	/*
	 * Who is running, the counters, the clock, who is running again: each CPU's in-flight
	 * part is then exact or an underestimate, never counted twice. It is an underestimate
	 * when a task that was running switched out during the counter read (its time may land
	 * in the counters after they were read), and that can be a long stretch for a task that
	 * ran alone: so read again if one moved. The run-queue clocks are read after the clock
	 * and before the second look, so they belong to the same stretch of each running task.
	 */
	for (int attempt = 0; attempt < CPU_READ_ATTEMPTS; attempt++) {
		err = bpf_map_lookup_elem(fd_running, &zero, c->running_before);
		if (err)
			return err;
		err = read_counters(c, s);
		if (err)
			return err;
		/* bpf_ktime_get_ns() is CLOCK_MONOTONIC too. */
		s->ts_ns = clock__monotonic_ns();
		err = read_rq_clocks(c);
		if (err)
			return err;
		err = bpf_map_lookup_elem(fd_running, &zero, c->running);
		if (err)
			return err;
		s->lower_bound = running__moved(c->running_before, c->running, c->nr_cpus);
		if (!s->lower_bound)
			break;
	}
	s->map_entries = s->n;
	/* In-flight time as extra entries, then one sort and a merge of equal ids. */
	for (int i = 0; i < c->nr_cpus; i++) {
		struct cpu_counter zeroes = {};
		uint64_t cgid, ns;

		ns = cpu__inflight_ns(&c->running[i], &c->skel->bss->rq_clocks[i], s->ts_ns, &cgid);
		if (!cgid)
			continue;
		err = sample__add(s, cgid, &zeroes);
		if (err)
			return err;
		s->e[s->n - 1].time_ns = s->e[s->n - 1].inflight_ns = ns;
	}
	if (s->n)
		qsort(s->e, s->n, sizeof(*s->e), bpfmap__key_cmp);
	sample__merge_equal(s);
	s->dropped_updates = c->skel->bss->drops.updates;
	s->dropped_ns = c->skel->bss->drops.time_ns;
	return 0;
}

void cpu_sample__free(struct cpu_sample *s)
{
	free(s->e);
	memset(s, 0, sizeof(*s));
}

int cpu__prune(struct tally_cpu *c, bool (*present)(uint64_t id, void *ctx), void *ctx)
{
	int fd = bpf_map__fd(c->skel->maps.cg_cpu);
	uint64_t *absent = NULL, key, next;
	size_t n = 0, cap = 0;
	bool first = true;
	int pruned = 0;

	if (c->removal)
		return 0;
	while (!bpf_map_get_next_key(fd, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (present(key, ctx))
			continue;
		if (c->n_absent && bsearch(&key, c->absent, c->n_absent, sizeof(key), bpfmap__key_cmp)) {
			/* Absent twice: gone. Deleting while iterating is fine, next is kept. */
			if (!bpf_map_delete_elem(fd, &key))
				pruned++;
			continue;
		}
		if (n == cap) {
			uint64_t *p = realloc(absent, (cap ? cap * 2 : 64) * sizeof(*p));

			if (!p) {
				free(absent);
				return -ENOMEM;
			}
			absent = p;
			cap = cap ? cap * 2 : 64;
		}
		absent[n++] = key;
	}
	if (n)
		qsort(absent, n, sizeof(*absent), bpfmap__key_cmp);
	free(c->absent);
	c->absent = absent;
	c->n_absent = n;
	return pruned;
}

const char *cpu__switch_hook(const struct tally_cpu *c)
{
	return c->raw_tp ? "raw_tp" : "tp_btf";
}

bool cpu__batch_reads(const struct tally_cpu *c)
{
	return c->counters.batch;
}

bool cpu__tracks_removal(const struct tally_cpu *c)
{
	return c->removal;
}

uint64_t cpu__tree_changes(struct tally_cpu *c)
{
	if (!c->tree)
		return c->untracked++;
	/* Acquire: read before whatever walk follows, never after it. */
	return __atomic_load_n(&c->skel->bss->tree_changes, __ATOMIC_ACQUIRE);
}

bool cpu__tracks_tree(const struct tally_cpu *c)
{
	return c->tree;
}

uint32_t cpu__max_cgroups(const struct tally_cpu *c)
{
	return c->max_cgroups;
}

struct cpu_bpf *cpu__skel(struct tally_cpu *c)
{
	return c->skel;
}

int cpustat__parse_usage(const char *buf, uint64_t *usage_usec)
{
	const char *p = buf;

	while (p && *p) {
		if (!strncmp(p, "usage_usec ", 11)) {
			char *end;

			errno = 0;
			*usage_usec = strtoull(p + 11, &end, 10);
			if (errno || end == p + 11)
				return -EINVAL;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -ENOENT;
}

int cpustat__read_usage(int dirfd, uint64_t *usage_usec)
{
	char buf[512];
	ssize_t len;
	int fd;

	fd = openat(dirfd, "cpu.stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	if (len < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	buf[len] = '\0';
	return cpustat__parse_usage(buf, usage_usec);
}
