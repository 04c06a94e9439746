// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The collector walks the cgroup tree only when the kernel counted a cgroup v2 mkdir, rmdir or
 * rename (bpf/cpu.bpf.c: tree_changes), and reuses the previous tree otherwise. The truth is a
 * fresh cg_tree__walk into a tree of the test's own: the collector's tree must hold the same
 * ids with the same paths after every change the test makes, and no walk may happen while the
 * count holds still. Other tests on this machine create cgroups at the same time: the whole
 * tree is compared only when the count held still around the comparison, the test's own
 * subtree always.
 */
#include <dirent.h>
#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "collect.h"
#include "cpu.h"
#include "discovery.h"
#include "helpers.h"
#include "pin.h"

/* A v1 cgroup and a bpffs mount of the test's own, removed by fini. */
static char v1_dirs[2][PATH_MAX];
static char bpffs[128];
static char plain[128];
static bool bpffs_mounted;

static void fini(void)
{
	th_cleanup();
	for (int i = 0; i < 2; i++)
		if (v1_dirs[i][0])
			rmdir(v1_dirs[i]);
	if (bpffs_mounted) {
		char root[160];

		snprintf(root, sizeof(root), "%s/tally", bpffs);
		pin__remove_all(root);
		umount2(bpffs, MNT_DETACH | UMOUNT_NOFOLLOW);
		bpffs_mounted = false;
	}
	if (bpffs[0])
		rmdir(bpffs);
	if (plain[0]) {
		char sub[160];

		snprintf(sub, sizeof(sub), "%s/a", plain);
		rmdir(sub);
		rmdir(plain);
	}
}

TestSuite(tree, .fini = fini, .timeout = 120);

/* The path of an absolute cgroup directory relative to the cgroup2 root, as a cg_node has it. */
static const char *rel(const char *abs)
{
	return abs + strlen(th_cgroot());
}

static bool under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(path, prefix, n) && (path[n] == '/' || !path[n]);
}

/*
 * The collector's tree against a fresh walk: the same ids with the same paths, restricted to
 * the cgroups under prefix ("/": all of them). The departed containers kept one more
 * generation come after the tree, with no parent: they are not part of it.
 */
static void expect_same_tree(struct collector *c, const struct cg_tree *fresh, const char *prefix)
{
	size_t n = collector__count(c), ours = 0, theirs = 0;

	for (size_t i = 0; i < n; i++) {
		const struct cg_node *x = collector__node(c, i);
		int k;

		if ((i && x->parent < 0) || !under(x->path, prefix))
			continue;
		ours++;
		k = cg_tree__find(fresh, x->id);
		cr_expect_geq(k, 0, "collector has %s (id %llu), a fresh walk does not", x->path,
			      (unsigned long long)x->id);
		if (k >= 0)
			cr_expect_str_eq(x->path, fresh->nodes[k].path, "id %llu",
					 (unsigned long long)x->id);
	}
	for (size_t k = 0; k < fresh->n; k++) {
		if (!under(fresh->nodes[k].path, prefix))
			continue;
		theirs++;
		cr_expect_geq(collector__find(c, fresh->nodes[k].id), 0,
			      "a fresh walk has %s, the collector does not", fresh->nodes[k].path);
	}
	cr_expect_eq(ours, theirs, "collector %zu cgroups under %s, a fresh walk %zu", ours, prefix,
		     theirs);
}

/*
 * One collection, then the comparison: always for the test's subtree, and for the whole tree
 * when the kernel counted no change from before the previous collection (*last) until after
 * the fresh walk (then nothing, not even another test's mkdir, can tell them apart). Returns
 * whether the collection walked.
 */
static bool collect_and_compare(struct collector *c, const char *top, uint64_t *last)
{
	struct tally_cpu *cpu = collector__cpu(c);
	uint64_t walks = collector__walks(c), before, after;
	struct cg_tree fresh = {};
	bool walked;

	before = cpu__tree_changes(cpu);
	cr_assert_eq(collector__collect(c), 0);
	walked = collector__walks(c) != walks;
	cr_assert_eq(cg_tree__walk(&fresh, th_cgroot()), 0);
	after = cpu__tree_changes(cpu);
	expect_same_tree(c, &fresh, rel(top));
	if (*last == before && before == after)
		expect_same_tree(c, &fresh, "/");
	*last = before;
	cg_tree__free(&fresh);
	return walked;
}

static struct collector *collector_start(const struct cpu_opts *opts, const char *root)
{
	struct collector *c = collector__new(root, opts);

	cr_assert_not_null(c, "failed to load BPF: %s", strerror(errno));
	return c;
}

static const char *child(const char *top, const char *name)
{
	char r[PATH_MAX];

	snprintf(r, sizeof(r), "%s/%s", rel(top) + 1, name);
	return th_cgroup_create(r);
}

/*
 * Cgroups created right after a collection, nested ones, removed ones: each collection after
 * the change has them exactly as a fresh walk does.
 */
Test(tree, follows_mkdir_and_rmdir)
{
	struct collector *c = collector_start(NULL, th_cgroot());
	uint64_t last = UINT64_MAX;
	const char *top, *a, *x;
	char name[32];

	cr_assert(cpu__tracks_tree(collector__cpu(c)), "the tree programs did not load");
	top = th_test_cgroup("tree");
	cr_assert(collect_and_compare(c, top, &last), "the first collection did not walk");
	cr_assert_geq(collector__find(c, th_cgroup_id(top)), 0);

	a = child(top, "a");
	x = child(top, "a/x");
	cr_assert(collect_and_compare(c, top, &last), "a mkdir did not make the collector walk");
	cr_assert_geq(collector__find(c, th_cgroup_id(x)), 0, "nested cgroup not seen");
	cr_assert_eq(th_cgroup_remove(x), 0);
	cr_assert(collect_and_compare(c, top, &last), "an rmdir did not make the collector walk");
	cr_assert_geq(collector__find(c, th_cgroup_id(a)), 0);

	/* Each one right after a collection that may have reused the tree. */
	for (int i = 0; i < 5; i++) {
		const char *n;
		uint64_t id;

		snprintf(name, sizeof(name), "n%d", i);
		collect_and_compare(c, top, &last);
		n = child(top, name);
		id = th_cgroup_id(n);
		collect_and_compare(c, top, &last);
		cr_assert_geq(collector__find(c, id), 0, "%s created after a collection not seen",
			      n);
		collect_and_compare(c, top, &last);
		cr_assert_eq(th_cgroup_remove(n), 0);
		collect_and_compare(c, top, &last);
		cr_assert_lt(collector__find(c, id), 0, "%s removed after a collection still seen",
			     n);
	}
	collector__free(c);
}

/*
 * A rename: cgroup v2 refuses it today (its kernfs operations have no rename), which the
 * reuse relies on no more than on the count of renames; where a kernel allows it, the next
 * collection must show the new path.
 */
Test(tree, follows_rename)
{
	struct collector *c = collector_start(NULL, th_cgroot());
	uint64_t last = UINT64_MAX, id;
	const char *top, *b;
	char to[PATH_MAX];

	top = th_test_cgroup("rename");
	b = child(top, "b");
	id = th_cgroup_id(b);
	collect_and_compare(c, top, &last);
	collect_and_compare(c, top, &last);
	snprintf(to, sizeof(to), "%s/b-renamed", top);
	if (rename(b, to)) {
		cr_assert_eq(errno, EPERM, "rename %s: %s", b, strerror(errno));
		cr_log_info("cgroup v2 refuses renames on this kernel (EPERM)");
		collect_and_compare(c, top, &last);
	} else {
		collect_and_compare(c, top, &last);
		cr_assert_str_eq(collector__node(c, collector__find(c, id))->path, rel(to));
		/* Back, for th_cleanup to find it. */
		cr_assert_eq(rename(to, b), 0);
		collect_and_compare(c, top, &last);
	}
	cr_assert_str_eq(collector__node(c, collector__find(c, id))->path, rel(b));
	collector__free(c);
}

/*
 * One collection of a collector rooted at the test's own cgroup (its cgroup2 "mount"), where
 * nothing but the test makes changes: its tree against a fresh walk of that directory, all of
 * it. Returns the walks so far.
 */
static uint64_t collect_own(struct collector *c, const char *root)
{
	struct cg_tree fresh = {};

	cr_assert_eq(collector__collect(c), 0);
	cr_assert_eq(cg_tree__walk(&fresh, root), 0);
	expect_same_tree(c, &fresh, "/");
	cg_tree__free(&fresh);
	return collector__walks(c);
}

/*
 * No change, no walk; a change, a walk at once. The collector is rooted at the test's cgroup,
 * so the count is its alone (see counts_changes_below_the_root_only) and every walk is
 * accounted for: the first collection's, and after each change two (the second because a
 * mkdir counts before its directory shows: see collector__tree).
 */
Test(tree, no_walk_without_changes)
{
	const char *top = th_test_cgroup("quiet"), *b;
	struct collector *c;
	uint64_t id;

	child(top, "a");
	child(top, "a/x");
	c = collector_start(&(struct cpu_opts){0}, top);
	cr_assert(cpu__tracks_tree(collector__cpu(c)));
	cr_assert_eq(collect_own(c, top), 1, "the first collection walks");
	cr_assert_eq(collect_own(c, top), 2, "the second walks to be sure of the first");
	for (int i = 0; i < 10; i++)
		cr_assert_eq(collect_own(c, top), 2, "a walk without a change");

	/* Right after a collection that reused the tree. */
	b = child(top, "a/b");
	id = th_cgroup_id(b);
	cr_assert_eq(collect_own(c, top), 3, "a mkdir, no walk");
	cr_assert_geq(collector__find(c, id), 0);
	cr_assert_eq(collect_own(c, top), 4);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(collect_own(c, top), 4, "a walk without a change");

	cr_assert_eq(th_cgroup_remove(b), 0);
	cr_assert_eq(collect_own(c, top), 5, "an rmdir, no walk");
	cr_assert_lt(collector__find(c, id), 0);
	cr_assert_eq(collect_own(c, top), 6);
	cr_assert_eq(collect_own(c, top), 6, "a walk without a change");
	collector__free(c);
}

/* Without the tree programs (as where they cannot load) every collection walks. */
Test(tree, fallback_walks_every_time)
{
	struct collector *c = collector_start(&(struct cpu_opts){.force_walks = true}, th_cgroot());
	const char *top = th_test_cgroup("fallback");
	uint64_t last = UINT64_MAX;

	cr_assert_not(cpu__tracks_tree(collector__cpu(c)));
	for (int i = 1; i <= 5; i++) {
		cr_assert(collect_and_compare(c, top, &last));
		cr_assert_eq(collector__walks(c), (uint64_t)i);
	}
	child(top, "x");
	collect_and_compare(c, top, &last);
	cr_assert_eq(collector__walks(c), 6);
	collector__free(c);
}

/*
 * A root that is not cgroup2 (a plain directory tree) has no cgroup events: every collection
 * walks it, and sees what changed.
 */
Test(tree, plain_directory_walked_every_time)
{
	char dir[128], sub[160];
	struct collector *c;

	snprintf(plain, sizeof(plain), "/dev/shm/tally-test-tree-%d-plain", (int)getpid());
	cr_assert_eq(mkdir(plain, 0700), 0, "mkdir %s: %s", plain, strerror(errno));
	snprintf(dir, sizeof(dir), "%s", plain);
	c = collector_start(NULL, dir);
	cr_assert_not(cpu__tracks_tree(collector__cpu(c)));
	cr_assert_eq(collect_own(c, dir), 1);
	cr_assert_eq(collect_own(c, dir), 2);
	snprintf(sub, sizeof(sub), "%s/a", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
	cr_assert_eq(collect_own(c, dir), 3);
	cr_assert_eq(collector__count(c), 2, "the root and a");
	cr_assert_eq(rmdir(sub), 0);
	cr_assert_eq(collect_own(c, dir), 4);
	cr_assert_eq(collector__count(c), 1);
	collector__free(c);
}

/* The first cgroup v1 hierarchy mounted here, or "" on a host without any. */
static void v1_mount(char *out, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;

	out[0] = '\0';
	cr_assert_not_null(f);
	while ((m = getmntent(f)))
		if (!strcmp(m->mnt_type, "cgroup")) {
			snprintf(out, len, "%s", m->mnt_dir);
			break;
		}
	endmntent(f);
}

/*
 * The tracepoints fire for v1 hierarchies too; those changes are not counted (a hybrid host
 * such as this one creates v1 groups with every container). A v1 mkdir, rename and rmdir with
 * the count unmoved around them shows it; another test's v2 mkdir can move it meanwhile, so
 * a few tries. A v2 mkdir and rmdir always move it.
 */
Test(tree, counts_v2_changes_only)
{
	struct tally_cpu *cpu = cpu__open(NULL);
	char v1[PATH_MAX - 64];
	uint64_t a, b;
	const char *top;
	bool quiet = false;

	cr_assert_not_null(cpu, "failed to load BPF: %s", strerror(errno));
	cr_assert(cpu__tracks_tree(cpu));
	a = cpu__tree_changes(cpu);
	top = th_test_cgroup("count");
	b = cpu__tree_changes(cpu);
	cr_assert_gt(b, a, "a v2 mkdir did not count");
	a = b;
	cr_assert_eq(th_cgroup_remove(top), 0);
	b = cpu__tree_changes(cpu);
	cr_assert_gt(b, a, "a v2 rmdir did not count");

	v1_mount(v1, sizeof(v1));
	if (!v1[0]) {
		cpu__free(cpu);
		cr_skip_test("no cgroup v1 hierarchy is mounted on this host");
	}
	snprintf(v1_dirs[0], sizeof(v1_dirs[0]), "%s/tally-test-v1-%d", v1, (int)getpid());
	snprintf(v1_dirs[1], sizeof(v1_dirs[1]), "%s/tally-test-v1-%d-renamed", v1, (int)getpid());
	for (int i = 0; i < 50 && !quiet; i++) {
		a = cpu__tree_changes(cpu);
		cr_assert_eq(mkdir(v1_dirs[0], 0755), 0, "mkdir %s: %s", v1_dirs[0],
			     strerror(errno));
		cr_assert_eq(rename(v1_dirs[0], v1_dirs[1]), 0, "rename %s: %s", v1_dirs[0],
			     strerror(errno));
		cr_assert_eq(rmdir(v1_dirs[1]), 0, "rmdir %s: %s", v1_dirs[1], strerror(errno));
		b = cpu__tree_changes(cpu);
		quiet = a == b;
		if (!quiet)
			th_sleep_ms(20);
	}
	cr_assert(quiet, "v1 mkdir, rename and rmdir moved the count in each of 50 tries");
	cpu__free(cpu);
}

/*
 * Scoped to a subtree (the collector's root, in a cgroup namespace): changes below it count,
 * changes next to it do not. Nothing else on this machine touches the test's own cgroups, so
 * the count is exact here.
 */
Test(tree, counts_changes_below_the_root_only)
{
	const char *top = th_test_cgroup("scope"), *in, *deep, *next;
	struct tally_cpu *cpu;
	uint64_t a;

	in = child(top, "in");
	cpu = cpu__open(&(struct cpu_opts){.tree_root = th_cgroup_id(in)});
	cr_assert_not_null(cpu, "failed to load BPF: %s", strerror(errno));
	cr_assert(cpu__tracks_tree(cpu));
	a = cpu__tree_changes(cpu);
	child(top, "next");
	next = child(top, "next/x");
	cr_expect_eq(cpu__tree_changes(cpu), a, "a mkdir next to the root counted");
	deep = child(top, "in/a/b/c");
	cr_expect_eq(cpu__tree_changes(cpu), a + 3, "3 mkdirs below the root");
	cr_assert_eq(th_cgroup_remove(deep), 0);
	cr_expect_eq(cpu__tree_changes(cpu), a + 4, "an rmdir below the root");
	cr_assert_eq(th_cgroup_remove(next), 0);
	cr_expect_eq(cpu__tree_changes(cpu), a + 4, "an rmdir next to the root counted");
	cpu__free(cpu);
}

/* The pinned directory of the cpu feature under root (there is one). */
static void pinned_dir(const char *root, char *out, size_t len)
{
	DIR *d = opendir(root);
	struct dirent *de;

	out[0] = '\0';
	cr_assert_not_null(d, "opendir %s: %s", root, strerror(errno));
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "cpu-", 4))
			snprintf(out, len, "%s/%s", root, de->d_name);
	closedir(d);
	cr_assert(out[0], "no cpu-* directory under %s", root);
}

/*
 * Pinned (the agent): the new programs' links are pinned with the others, keep counting while
 * no agent runs, and the next one reads on from the same count.
 */
Test(tree, pinned_count_outlives_the_process)
{
	char root[PATH_MAX + 8], dir[PATH_MAX + 512], path[PATH_MAX + 576];
	struct cpu_opts o = {.pin_root = root};
	static const char *const links[] = {"link-handle_cgroup_mkdir", "link-handle_cgroup_rename",
					    "link-handle_cgroup_rmdir"};
	struct tally_cpu *cpu;
	uint64_t before, after;
	const char *top;

	snprintf(bpffs, sizeof(bpffs), "/dev/shm/tally-test-tree-%d-bpffs", (int)getpid());
	cr_assert_eq(mkdir(bpffs, 0700), 0, "mkdir %s: %s", bpffs, strerror(errno));
	cr_assert_eq(mount("bpf", bpffs, "bpf", 0, "mode=0700"), 0, "mount bpffs: %s",
		     strerror(errno));
	bpffs_mounted = true;
	snprintf(root, sizeof(root), "%s/tally", bpffs);

	cpu = cpu__open(&o);
	cr_assert_not_null(cpu, "failed to load BPF: %s", strerror(errno));
	cr_assert(cpu__tracks_tree(cpu));
	cr_assert_not(cpu__resumed(cpu));
	pinned_dir(root, dir, sizeof(dir));
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, links[i]);
		cr_expect_eq(access(path, F_OK), 0, "%s not pinned", path);
	}
	before = cpu__tree_changes(cpu);
	cpu__free(cpu);

	top = th_test_cgroup("pinned");
	cr_assert_eq(th_cgroup_remove(top), 0);

	cpu = cpu__open(&o);
	cr_assert_not_null(cpu, "failed to load BPF: %s", strerror(errno));
	cr_assert(cpu__resumed(cpu));
	after = cpu__tree_changes(cpu);
	cr_expect_geq(after, before + 2, "count %llu before, %llu after a mkdir and an rmdir",
		      (unsigned long long)before, (unsigned long long)after);
	cpu__free(cpu);
}
