// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The CPU path against the kernel's own accounting: real cgroups, real burners, real BPF.
 * Truth is each cgroup's cpu.stat usage_usec; tally must agree within 1% or 10 ms.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "collect.h"
#include "cpu.h"
#include "helpers.h"

#define TOL_REL 0.01
#define TOL_NS	10000000ull

static void fini(void)
{
	th_cleanup();
}

TestSuite(cpu, .fini = fini, .timeout = 60);

/*
 * A task's exit tail after its cgroup is gone: the kernel charges it to the root cgroup, tally
 * to the nearest live ancestor (docs/ARCHITECTURE.md). Tests that remove many cgroups with
 * exiting tasks set this to their count times a bound per exit.
 */
static uint64_t exit_tail_allowance_ns;
/*
 * A killed child's wait returns at exit_notify, before the child's last switch: its exit tail
 * (tearing down its address space, the big one of an ASan process) can still be on a CPU,
 * where tally counts it in flight and cpu.stat has it only up to the last tick. Seen: 11-20 ms
 * per child under ASan. Allowed above the kernel's number, per child killed, never below.
 */
#define KILLED_TAIL_NS 25000000ull

/* tally's hierarchical CPU of a cgroup, bracketed by two cpu.stat reads. */
static void expect_matches_kernel(struct collector *c, const char *abs)
{
	uint64_t id = th_cgroup_id(abs), before, after, lo;
	struct cg_usage u;
	int i;

	/*
	 * A read during which a running task kept switching out returns a lower bound without
	 * its in-flight part (cpu__read: exact or less, never more); the next read has it. That
	 * happens under ASan on a loaded machine: read again, a bounded number of times, only
	 * while below. Above is never retried.
	 */
	for (int attempt = 0;; attempt++) {
		before = th_cpustat_ns(abs);
		cr_assert_eq(collector__collect(c), 0);
		after = th_cpustat_ns(abs);
		i = collector__find(c, id);
		cr_assert_geq(i, 0, "cgroup %s not found by the walk", abs);
		collector__usage(c, i, &u);
		lo = before > TOL_NS ? before - TOL_NS : 0;
		if (attempt == 3 || u.cpu_ns + TOL_NS >= lo)
			break;
	}
	/*
	 * tally read its counters between the two cpu.stat reads, which a slow collection on a
	 * loaded machine puts far apart; the kernel can lag a tick behind for a running task:
	 * allow the tolerance both ways.
	 */
	{
		const struct cpu_sample *s = collector__cpu_sample(c);
		const struct cpu_entry *e = cpu_sample__find(s, id);

		/* Its own entry and the read's bound say which part went missing, if any. */
		cr_expect(u.cpu_ns + TOL_NS >= lo &&
			      (th_close(u.cpu_ns, before, TOL_REL, TOL_NS) ||
			       th_close(u.cpu_ns, after, TOL_REL, TOL_NS) ||
			       (u.cpu_ns >= before &&
				u.cpu_ns <= after + TOL_NS + exit_tail_allowance_ns)),
			  "%s: tally %.6f s, kernel cpu.stat %.6f..%.6f s (own entry %.6f s of "
			  "which %.6f s in flight; lower bound: %d)",
			  abs, u.cpu_ns / 1e9, before / 1e9, after / 1e9,
			  e ? e->time_ns / 1e9 : -1.0, e ? e->inflight_ns / 1e9 : -1.0,
			  s->lower_bound);
	}
	cr_expect_gt(u.cpu_ns, 0, "%s: no CPU time counted", abs);
}

/* The same, after children were killed (their exit tail allowed above the kernel's number). */
static void expect_matches_kernel_after_kill(struct collector *c, const char *abs)
{
	expect_matches_kernel(c, abs);
}

static struct collector *collector_start(const struct cpu_opts *opts)
{
	struct collector *c = collector__new(th_cgroot(), opts);

	exit_tail_allowance_ns = 0;
	cr_assert_not_null(c, "failed to load BPF: %s", strerror(errno));
	/* First generation seeds pre-existing cgroups; the test's own come later. */
	cr_assert_eq(collector__collect(c), 0);
	return c;
}

static void rt_burn(void *arg)
{
	struct sched_param sp = {.sched_priority = 50};

	/* SCHED_FIFO: no CFS task preempts it, so it seldom leaves its CPU: only for a task of
	 * a higher class, or for CFS tasks waiting there, which the fair server (6.12) lets run
	 * for up to 50 ms of every second (RT throttling before it). */
	if (sched_setscheduler(0, SCHED_FIFO, &sp))
		_exit(3);
	th_spin_ms(*(unsigned *)arg);
}

Test(cpu, inflight_burner_alone)
{
	struct collector *c = collector_start(NULL);
	const char *cg = th_test_cgroup("inflight");
	unsigned ms = 600;
	const struct cpu_entry *e;
	uint64_t most = 0;
	pid_t pid;

	pid = th_child_start_on(cg, (int)sysconf(_SC_NPROCESSORS_ONLN) - 1, rt_burn, &ms);
	th_sleep_ms(250);
	/*
	 * It seldom switches out: most of its time is in flight, far more than any CFS slice.
	 * A read can still follow one of its rare switches closely (seen: 14 ms in flight of
	 * 300 ms, 1 run in 40), so of up to 4 reads 25 ms apart, one must find over 50 ms in
	 * flight; each read must match the kernel.
	 */
	for (int i = 0; i < 4 && most <= 50000000ull; i++) {
		if (i)
			th_sleep_ms(25);
		expect_matches_kernel(c, cg);
		e = cpu_sample__find(collector__cpu_sample(c), th_cgroup_id(cg));
		cr_assert_not_null(e);
		most = e->inflight_ns > most ? e->inflight_ns : most;
	}
	cr_expect_gt(most, 50000000ull, "in-flight at most %.3f s, the last read %.3f s of %.3f s",
		     most / 1e9, e->inflight_ns / 1e9, e->time_ns / 1e9);
	th_sleep_ms(150);
	expect_matches_kernel(c, cg);
	cr_assert_eq(th_child_wait(pid), 0, "burner failed (SCHED_FIFO refused?)");
	expect_matches_kernel(c, cg);
	e = cpu_sample__find(collector__cpu_sample(c), th_cgroup_id(cg));
	cr_expect_eq(e->inflight_ns, 0, "exited, yet in flight");
	collector__free(c);
}

/*
 * A task already busy on its CPU when tally loads: the time it runs from the load on is
 * counted before its first switch too (adopt_running). Before that, the first switch seen
 * on its CPU charged nothing, and a container busy at an agent's start read hundreds of ms
 * low for good (the seed from cpu.stat, taken in between, assumed the counters had it).
 */
Test(cpu, busy_before_load_counted_from_load)
{
	const char *cg = th_test_cgroup("busy-before-load");
	struct collector *c;
	unsigned ms = 700;
	pid_t pid;

	pid = th_child_start_on(cg, (int)sysconf(_SC_NPROCESSORS_ONLN) - 1, rt_burn, &ms);
	th_sleep_ms(100);
	c = collector_start(NULL);
	th_sleep_ms(300);
	expect_matches_kernel(c, cg);
	cr_assert_eq(th_child_wait(pid), 0, "burner failed (SCHED_FIFO refused?)");
	expect_matches_kernel(c, cg);
	collector__free(c);
}

/* Two siblings under one parent: each matches, and the parent includes both. */
static void siblings(const struct cpu_opts *opts, const char *name)
{
	struct collector *c = collector_start(opts);
	const char *parent = th_test_cgroup(name);
	char rel[PATH_MAX];
	const char *a, *b;
	pid_t pa, pb;

	snprintf(rel, sizeof(rel), "%s/a", parent + strlen(th_cgroot()) + 1);
	a = th_cgroup_create(rel);
	snprintf(rel, sizeof(rel), "%s/b", parent + strlen(th_cgroot()) + 1);
	b = th_cgroup_create(rel);
	pa = th_burner_start(a, -1);
	pb = th_burner_start(b, -1);
	th_sleep_ms(600);
	expect_matches_kernel(c, a);
	expect_matches_kernel(c, b);
	expect_matches_kernel(c, parent);
	th_child_stop(pa);
	th_child_stop(pb);
	exit_tail_allowance_ns = 2 * KILLED_TAIL_NS;
	expect_matches_kernel_after_kill(c, a);
	expect_matches_kernel_after_kill(c, b);
	expect_matches_kernel_after_kill(c, parent);
	collector__free(c);
}

Test(cpu, siblings_and_parent)
{
	siblings(NULL, "siblings");
}

/*
 * The fallbacks give the same numbers: raw_tp instead of tp_btf, per-key reads. One burner:
 * per-key reads are slow under ASan, and with more busy tasks than CPUs nearly every read
 * races a switch and returns its (documented) lower bound.
 */
Test(cpu, fallback_raw_tp_and_per_key_reads)
{
	struct cpu_opts o = {.force_raw_tp = true, .force_no_batch = true};
	struct collector *c = collector_start(&o);
	const char *parent = th_test_cgroup("fallback");
	char rel[PATH_MAX];
	const char *a;
	pid_t pid;

	cr_assert_str_eq(cpu__switch_hook(collector__cpu(c)), "raw_tp");
	cr_assert_not(cpu__batch_reads(collector__cpu(c)));
	snprintf(rel, sizeof(rel), "%s/a", parent + strlen(th_cgroot()) + 1);
	a = th_cgroup_create(rel);
	pid = th_burner_start(a, -1);
	th_sleep_ms(500);
	expect_matches_kernel(c, a);
	expect_matches_kernel(c, parent);
	th_child_stop(pid);
	exit_tail_allowance_ns = KILLED_TAIL_NS;
	expect_matches_kernel_after_kill(c, a);
	expect_matches_kernel_after_kill(c, parent);
	collector__free(c);
}

/* A removed cgroup's entry goes away and its time stays in its parent. */
Test(cpu, removed_cgroup_folds_into_parent)
{
	struct collector *c = collector_start(NULL);
	const char *parent = th_test_cgroup("removed");
	char rel[PATH_MAX];
	const char *child;
	uint64_t child_id;
	pid_t pid;

	snprintf(rel, sizeof(rel), "%s/child", parent + strlen(th_cgroot()) + 1);
	child = th_cgroup_create(rel);
	child_id = th_cgroup_id(child);
	pid = th_burner_start(child, -1);
	th_sleep_ms(400);
	th_child_stop(pid);
	exit_tail_allowance_ns = KILLED_TAIL_NS;
	expect_matches_kernel_after_kill(c, child);
	cr_assert_not_null(cpu_sample__find(collector__cpu_sample(c), child_id));
	cr_assert_eq(th_cgroup_remove(child), 0);
	expect_matches_kernel_after_kill(c, parent);
	if (cpu__tracks_removal(collector__cpu(c))) {
		cr_expect_null(cpu_sample__find(collector__cpu_sample(c), child_id),
			       "entry of removed cgroup %llu still in the map",
			       (unsigned long long)child_id);
	} else {
		/* Reconciliation needs the id absent from two walks. */
		cr_assert_eq(collector__collect(c), 0);
		cr_assert_eq(collector__collect(c), 0);
		cr_expect_null(cpu_sample__find(collector__cpu_sample(c), child_id));
	}
	collector__free(c);
}

/*
 * A removed container stays one more generation with its last sample (so a scrape per period
 * sees its final numbers), then goes; its parent keeps the time.
 */
Test(cpu, removed_container_kept_one_generation)
{
	struct collector *c = collector_start(NULL);
	const char *top = th_test_cgroup("departed");
	char rel[PATH_MAX], id[65];
	struct cg_usage last, u;
	const char *cg;
	uint64_t cgid;
	pid_t pid;
	int i;

	snprintf(id, sizeof(id), "de9a%08x0ddba11f00dfacade5eedc0de0123456789abcdef0123456789a",
		 (unsigned)getpid());
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top + strlen(th_cgroot()) + 1, id);
	cg = th_cgroup_create(rel);
	cgid = th_cgroup_id(cg);
	pid = th_burner_start(cg, -1);
	th_sleep_ms(200);
	th_child_stop(pid);
	exit_tail_allowance_ns = KILLED_TAIL_NS;
	expect_matches_kernel_after_kill(c, cg);
	i = collector__find(c, cgid);
	cr_assert_geq(i, 0);
	collector__usage(c, i, &last);
	cr_assert_eq(th_cgroup_remove(cg), 0);

	cr_assert_eq(collector__collect(c), 0);
	i = collector__find(c, cgid);
	cr_assert_geq(i, 0, "the removed container went at once");
	cr_expect_eq(collector__node(c, i)->id, cgid);
	collector__usage(c, i, &u);
	cr_expect_eq(u.node->ident.kind, CG_CONTAINER);
	cr_expect_str_eq(u.node->ident.id, id);
	cr_expect_eq(u.cpu_ns, last.cpu_ns, "last sample %llu, kept %llu",
		     (unsigned long long)last.cpu_ns, (unsigned long long)u.cpu_ns);
	cr_expect_eq(u.ts_ns, last.ts_ns);
	cr_expect_eq(collector__count(c), (size_t)i + 1, "kept after the tree's nodes");

	cr_assert_eq(collector__collect(c), 0);
	cr_expect_lt(collector__find(c, cgid), 0, "the removed container is still listed");
	for (size_t k = 0; k < collector__count(c); k++)
		cr_expect_neq(collector__node(c, k)->id, cgid);
	collector__free(c);
}

static void brief_work(void *arg)
{
	th_spin_ms(2);
}

/* Churn: many short-lived cgroups leave no entries behind. */
Test(cpu, churn_leaves_no_entries)
{
	struct collector *c = collector_start(NULL);
	const char *top = th_test_cgroup("churn");
	uint64_t ids[200];
	char rel[PATH_MAX];

	for (int i = 0; i < 200; i++) {
		const char *cg;

		snprintf(rel, sizeof(rel), "%s/c%d", top + strlen(th_cgroot()) + 1, i);
		cg = th_cgroup_create(rel);
		ids[i] = th_cgroup_id(cg);
		th_child_wait(th_child_start(cg, brief_work, NULL));
		cr_assert_eq(th_cgroup_remove(cg), 0);
	}
	cr_assert_eq(collector__collect(c), 0);
	cr_assert_eq(collector__collect(c), 0);
	for (int i = 0; i < 200; i++)
		cr_expect_null(cpu_sample__find(collector__cpu_sample(c), ids[i]),
			       "cgroup %d (%llu) left an entry", i, (unsigned long long)ids[i]);
	exit_tail_allowance_ns = 200 * 100000ull; /* 100 us per exited child */
	expect_matches_kernel(c, top);
	collector__free(c);
}

/* A full map says so: dropped updates are counted, never silently lost. */
Test(cpu, full_map_counts_drops)
{
	struct cpu_opts o = {.max_cgroups = 1};
	struct collector *c = collector_start(&o);
	const char *a = th_test_cgroup("fullmap");
	pid_t pid;

	/* The root cgroup (this process) and the burner's compete for one entry. */
	pid = th_burner_start(a, -1);
	th_sleep_ms(300);
	th_child_stop(pid);
	th_spin_ms(50);
	cr_assert_eq(collector__collect(c), 0);
	cr_expect_gt(collector__cpu_sample(c)->dropped_updates, 0);
	cr_expect_gt(collector__cpu_sample(c)->dropped_ns, 0);
	cr_expect_leq(collector__cpu_sample(c)->map_entries, 1);
	collector__free(c);
}

/* Rates: cores over an interval agree with the kernel's; a new cgroup's first sample has none. */
Test(cpu, nano_cores_of_a_burner)
{
	struct collector *c = collector_start(NULL);
	const char *cg = th_test_cgroup("rate");
	uint64_t k0, k1, t0, t1, kernel;
	struct cg_usage u;
	pid_t pid;

	pid = th_burner_start(cg, -1);
	th_sleep_ms(100);
	k0 = th_cpustat_ns(cg);
	cr_assert_eq(collector__collect(c), 0);
	collector__usage(c, collector__find(c, th_cgroup_id(cg)), &u);
	t0 = u.ts_ns;
	cr_expect_not(u.has_rate, "first sample of a cgroup has no rate");
	/*
	 * A sample that is a lower bound (cpu_sample.lower_bound: under ASan on a loaded VM) gives
	 * no rate, with it or after it: measure again from the latest sample, a bounded number of
	 * times. A rate that is there must be right.
	 */
	for (int attempt = 0;; attempt++) {
		th_sleep_ms(500);
		k1 = th_cpustat_ns(cg);
		cr_assert_eq(collector__collect(c), 0);
		collector__usage(c, collector__find(c, th_cgroup_id(cg)), &u);
		t1 = u.ts_ns;
		if (u.has_rate || attempt == 4)
			break;
		k0 = k1;
		t0 = t1;
	}
	cr_assert(u.has_rate);
	kernel = (k1 - k0) * 1000000000ull / (t1 - t0);
	/* 2 x 10 ms of tolerance on each end over 0.5 s: 0.04 cores. */
	cr_expect(th_close(u.nano_cores, kernel, 0.02, 40000000ull),
		  "tally %.3f cores, kernel %.3f cores", u.nano_cores / 1e9, kernel / 1e9);
	cr_expect_gt(u.nano_cores, 0);
	th_child_stop(pid);
	collector__free(c);
}

/* voluntary + nonvoluntary context switches of a task, from /proc/<pid>/status. */
static uint64_t task_switches(pid_t pid)
{
	unsigned long long v = 0, nv = 0;
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "voluntary_ctxt_switches: %llu", &v);
		sscanf(line, "nonvoluntary_ctxt_switches: %llu", &nv);
	}
	fclose(f);
	return v + nv;
}

static void sleep_then_stop(void *arg)
{
	struct timespec ms = {.tv_nsec = 1000000};

	for (int i = 0; i < 50; i++)
		nanosleep(&ms, NULL);
	raise(SIGSTOP);
}

static void baseline(pid_t pid, void *ctx)
{
	*(uint64_t *)ctx = task_switches(pid);
}

/* Switches out of a cgroup equal the kernel's per-task switch counts of its only task. */
Test(cpu, switches_match_the_tasks_own_counts)
{
	struct collector *c = collector_start(NULL);
	const char *cg = th_test_cgroup("switches");
	uint64_t at_start, at_stop;
	struct cg_usage u;
	int status;
	pid_t pid;

	/* Baseline: the child is blocked, it switched out before the move, so every switch
	 * from here on is one out of the cgroup. */
	pid = th_child_start_hooked(cg, sleep_then_stop, NULL, baseline, &at_start);
	cr_assert_eq(waitpid(pid, &status, WUNTRACED), pid);
	cr_assert(WIFSTOPPED(status));
	at_stop = task_switches(pid);
	cr_assert_eq(collector__collect(c), 0);
	collector__usage(c, collector__find(c, th_cgroup_id(cg)), &u);
	cr_expect_geq(at_stop - at_start, 50, "50 sleeps are 50 switches at least");
	cr_expect_eq(u.switches, at_stop - at_start, "tally %llu switches, the task's own %llu",
		     (unsigned long long)u.switches, (unsigned long long)(at_stop - at_start));
	th_child_stop(pid);
	collector__free(c);
}

/* cpu__inflight_ns at now_ns gives want_ns to want_cgid. */
static void expect_inflight(const struct cpu_running *r, const struct cpu_rq_clock *k,
			    uint64_t now_ns, uint64_t want_cgid, uint64_t want_ns, const char *what)
{
	uint64_t cgid = ~0ull, ns = cpu__inflight_ns(r, k, now_ns, &cgid);

	cr_expect(cgid == want_cgid && ns == want_ns,
		  "%s: %llu ns to cgroup %llu, want %llu to %llu", what, (unsigned long long)ns,
		  (unsigned long long)cgid, (unsigned long long)want_ns,
		  (unsigned long long)want_cgid);
}

/*
 * The in-flight part of one CPU, on fixtures: the task seen switched in gets the time since
 * its switch less what was stolen; a task whose switch-in was not seen (rq->curr another one)
 * gets its own stint, and the task seen switched in nothing; an idle CPU nobody anything.
 */
Test(cpu, inflight_goes_to_the_task_really_running)
{
	struct cpu_running r = {
	    .since_ns = 1000000000ull,
	    .cgid = 7,
	    .task = 0xa000,
	    .rq = 0xf000,
	    .since_rq_ns = 500,
	    .since_task_ns = 400,
	};
	struct cpu_rq_clock k = {.rq_ns = 500 + 30000000, .task_ns = 400 + 28000000};

	expect_inflight(&r, &k, 1030000000ull, 7, 28000000,
			"seen, rq->curr not known: 2 ms stolen");
	k.curr = 0xa000;
	expect_inflight(&r, &k, 1030000000ull, 7, 28000000, "rq->curr the task seen");
	k.curr = 0xb000;
	k.curr_cgid = 9;
	k.curr_stint_ns = 12000000;
	expect_inflight(&r, &k, 1030000000ull, 9, 12000000, "another task, switched in unseen");
	k.curr_cgid = 0;
	expect_inflight(&r, &k, 1030000000ull, 0, 0, "idle (or no stint known), unseen");
	k.curr = 0;
	r.cgid = 0;
	expect_inflight(&r, &k, 1030000000ull, 0, 0, "idle, seen");
	r.cgid = 7;
	expect_inflight(&r, &k, 900000000ull, 0, 0, "switched in after now");
}
