// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The writable-layer checkpoint's format: hostile paths round-trip, a line cut by a crash or
 * a foreign line loses only itself, another version's file is refused, and saving replaces
 * the file whole (0600, no temporary left).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "checkpoint.h"
#include "disk_helpers.h"

static void fini(void)
{
	dh_cleanup();
}

TestSuite(checkpoint, .fini = fini);

static const char *const paths[] = {
    "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/42/fs",
    "/with space/and\ttab",
    "/new\nline",
    "/back\\slash\\101",
    "/bytes\x01\x7f\x80\xff\xfe",
    "/\xe2\x82\xac-utf8",
};

static char *written(const struct ckpt *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cr_assert_eq(ckpt__write(f, c), 0);
	cr_assert_eq(fclose(f), 0);
	return buf;
}

static void fill(struct ckpt *c)
{
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct disk_usage u = {.used_bytes = 4096 * (i + 1) + (1ull << 40),
				       .inodes_used = i + 1,
				       .timestamp_ns = 1700000000000000000ull + i};

		/* Ids out of order: parse sorts. */
		cr_assert_eq(ckpt__add(c, 1000 - i * 7, paths[i], &u), 0);
	}
}

static void expect_same(const struct ckpt *got, const struct ckpt *want)
{
	cr_assert_eq(got->n, want->n);
	for (size_t i = 0; i < want->n; i++) {
		const struct ckpt_entry *w = &want->e[i];
		const struct ckpt_entry *g = ckpt__find(got, w->cgid, w->upperdir);

		cr_assert_not_null(g, "entry %llu '%s' lost", (unsigned long long)w->cgid,
				   w->upperdir);
		cr_expect_eq(g->usage.used_bytes, w->usage.used_bytes);
		cr_expect_eq(g->usage.inodes_used, w->usage.inodes_used);
		cr_expect_eq(g->usage.timestamp_ns, w->usage.timestamp_ns);
	}
}

Test(checkpoint, hostile_paths_round_trip)
{
	struct ckpt want = {}, got = {};
	size_t bad = 1;
	char *buf;

	fill(&want);
	buf = written(&want);
	/* One line per entry: no byte of a path may break a line. */
	{
		size_t lines = 0;

		for (char *p = buf; *p; p++)
			lines += *p == '\n';
		cr_expect_eq(lines, want.n + 1, "%s", buf);
	}
	cr_assert_eq(ckpt__parse(buf, &got, &bad), 0);
	cr_expect_eq(bad, 0);
	expect_same(&got, &want);
	/* The same id with another upperdir (a runtime reused the id?) is not this layer. */
	cr_expect_null(ckpt__find(&got, want.e[0].cgid, "/elsewhere"));
	free(buf);
	ckpt__free(&want);
	ckpt__free(&got);
}

Test(checkpoint, torn_and_foreign_lines_lose_only_themselves)
{
	static const char text[] = "tally-layers 1\n"
				   "7 4096 1 5 /good/one\n"
				   "garbage\n"
				   "8 1 2 /missing-a-field\n"
				   "9 1 2 3 relative/path\n"
				   "10 1 2 3 /bad\\9zzescape\n"
				   "11 1 2 3 /nul\\000byte\n"
				   "12 8192 2 6 /good/two\n"
				   "13 1 2 3 /cut-by-a-cra";
	struct ckpt got = {};
	size_t bad = 0;

	cr_assert_eq(ckpt__parse(text, &got, &bad), 0);
	cr_expect_eq(bad, 6, "bad lines: %zu", bad);
	cr_assert_eq(got.n, 2);
	cr_expect_not_null(ckpt__find(&got, 7, "/good/one"));
	cr_expect_eq(ckpt__find(&got, 12, "/good/two")->usage.used_bytes, 8192);
	ckpt__free(&got);
}

Test(checkpoint, another_version_is_refused)
{
	struct ckpt got = {};
	size_t bad = 0;

	cr_expect_eq(ckpt__parse("tally-layers 2\n7 1 1 1 /x\n", &got, &bad), -EINVAL);
	cr_expect_eq(ckpt__parse("", &got, &bad), -EINVAL);
	cr_expect_eq(got.n, 0);
	ckpt__free(&got);
}

Test(checkpoint, save_replaces_the_file_whole)
{
	const char *dir = dh_path("%s/state", dh_tmpdir("ckpt"));
	struct ckpt want = {}, got = {};
	struct stat st;
	size_t bad = 1;

	/* Nothing yet: an empty checkpoint, no error. */
	cr_assert_eq(ckpt__load(dir, &got, &bad), 0);
	cr_expect_eq(got.n, 0);
	fill(&want);
	cr_assert_eq(ckpt__save(dir, &want), 0);
	cr_assert_eq(ckpt__save(dir, &want), 0); /* over an existing one */
	cr_assert_eq(stat(dh_path("%s/" CHECKPOINT_FILE, dir), &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_expect_neq(access(dh_path("%s/" CHECKPOINT_FILE ".tmp", dir), F_OK), 0);
	cr_assert_eq(stat(dir, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0700);
	cr_assert_eq(ckpt__load(dir, &got, &bad), 0);
	cr_expect_eq(bad, 0);
	expect_same(&got, &want);
	cr_expect_eq(ckpt__remove(dir), 0);
	cr_expect_neq(access(dir, F_OK), 0, "the emptied state dir stays");
	cr_expect_eq(ckpt__remove(dir), 0, "nothing to remove is fine");
	ckpt__free(&want);
	ckpt__free(&got);
}
