/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Fixtures for the disk tests: temporary trees named after the test and the pid, overlay
 * mounts in a private mount namespace, du(1) as the independent truth, and file operations
 * that assert. Everything a test creates (engines, trees, mounts, directories) is released by
 * dh_cleanup(), which the suite's .fini runs even when an assertion failed; directories left
 * by a test that crashed are swept by the next run.
 */
#ifndef __TALLY_TESTS_DISK_HELPERS_H
#define __TALLY_TESTS_DISK_HELPERS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "disk.h"

struct dh_overlay {
	char root[512]; /* the test's temporary directory (short) */
	char lower[PATH_MAX];
	char upper[PATH_MAX];
	char work[PATH_MAX];
	char merged[PATH_MAX];
};

/* mkdtemp("/tmp/tally-test-<name>-<pid>-XXXXXX"), removed by dh_cleanup(). */
const char *dh_tmpdir(const char *name);
/* A temporary directory with lower/, upper/, work/ and merged/ in it (nothing mounted yet). */
void dh_overlay_prepare(struct dh_overlay *o, const char *name);
/* Mount the overlay on merged/ (mount(2)), in this test's own mount namespace. */
void dh_overlay_mount(struct dh_overlay *o);

/*
 * A container process in cgroup cg (stopped by th_cleanup), its root the overlay at root
 * (chroot), where it first writes /written-by-container (50,000 bytes, synced); root NULL:
 * the host's root, nothing written. Returns once it is ready.
 */
void dh_container_start(const char *cg, const char *root);

/* An engine and trees that dh_cleanup() releases if the test does not. Thread-safe. */
struct disk *dh_disk_new(enum disk_mark_mode mode);
void dh_disk_free(struct disk *d);
/* disk__track(), asserting success. */
struct disk_tree *dh_track(struct disk *d, const char *path);
/* disk__track() without asserting (NULL and errno); a tree returned is registered. */
struct disk_tree *dh_try_track(struct disk *d, const char *path);
void dh_untrack(struct disk *d, struct disk_tree *t);

/* du -s --block-size=1 and du -s --inodes of path: the first number du prints. */
uint64_t dh_du_bytes(const char *path);
uint64_t dh_du_inodes(const char *path);
/* "<ino> <blocks> <links> <type> <path>" of at most max_lines entries, to stderr. */
void dh_dump_tree(const char *path, int max_lines);

/* A copy of s that lives until dh_cleanup(). */
const char *dh_keep(const char *s);
/* printf into one of 16 rotating buffers: for building paths inline. */
const char *dh_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* File operations; each asserts that it succeeded. Data written is never all zeros. */
void dh_write(const char *path, size_t size); /* create or truncate, then write size bytes */
void dh_append(const char *path, size_t size);
void dh_truncate(const char *path, off_t size);	 /* truncate(2) */
void dh_ftruncate(const char *path, off_t size); /* open + ftruncate(2) */
void dh_mkdir(const char *path);
void dh_rmdir(const char *path);
void dh_unlink(const char *path);
void dh_rename(const char *from, const char *to);
void dh_link(const char *from, const char *to);
void dh_symlink(const char *target, const char *path);
void dh_mkfifo(const char *path);
void dh_chmod(const char *path, mode_t mode);
/* rm -rf --one-file-system (GNU rm copes with any depth). 0 or the exit status. */
int dh_rm_rf(const char *path);

uint64_t dh_ino(const char *path); /* lstat */

/* Release everything above, newest first: trees, engines, mounts, directories. */
void dh_cleanup(void);

/*
 * Unmount an overlay that dh_overlay_mount mounted and remove its directory now (as a runtime
 * removes a container's layer), asserting both; dh_cleanup then forgets them. For tests that
 * make more overlays over their run than dh_cleanup could hold at once.
 */
void dh_overlay_remove(struct dh_overlay *o);

#endif
