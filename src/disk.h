/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The disk path: exact writable-layer usage (du -s --block-size=1 and du -s --inodes of a
 * tree), scanned once per tree and then kept current from fanotify events.
 *
 * Marks go on before a tree is scanned, so every change made during or after the scan is
 * reported; events only name (directory, name), and applying one is a re-stat of that name,
 * which is idempotent: events that race the scan, arrive twice or arrive in any order leave the
 * index exact. Events are coalesced per name until the next disk__process(), so a file written
 * a million times between two ticks is stat'ed once.
 *
 * Thread-safe: trees may be added from several threads (one scan per tree: later callers wait
 * for it), while one thread runs disk__process(). Reconciliation walks run with the engine
 * unlocked.
 */
#ifndef __TALLY_DISK_H
#define __TALLY_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct disk;
struct disk_tree;

enum disk_mark_mode {
	/* One FAN_MARK_FILESYSTEM per filesystem; events of other trees are filtered out. */
	DISK_MARK_FILESYSTEM = 0,
	/* One inode mark per tracked directory (FAN_EVENT_ON_CHILD). */
	DISK_MARK_INODE,
};

struct disk_opts {
	enum disk_mark_mode mark_mode;
};

/* What du would print for a tree. */
struct disk_usage {
	uint64_t used_bytes;   /* sum of st_blocks * 512 over unique inodes */
	uint64_t inodes_used;  /* unique inodes, the top directory included */
	uint64_t timestamp_ns; /* CLOCK_REALTIME when the numbers were last made current */
};

struct disk_stats {
	uint64_t trees;
	uint64_t scans;	      /* initial scans */
	uint64_t rescans;     /* after FAN_Q_OVERFLOW */
	uint64_t overflows;   /* FAN_Q_OVERFLOW events */
	uint64_t reconciles;  /* reconciliation walks */
	uint64_t drift_found; /* reconciliation walks that found the index wrong */
	int64_t drift_bytes;  /* sum over walks of (walk - index) */
	int64_t drift_inodes;
	uint64_t events;	 /* fanotify events read */
	uint64_t events_ignored; /* events outside every tree */
	uint64_t refreshes;	 /* names re-stat'ed (after coalescing) */
	uint64_t names;		 /* names indexed, all trees */
	uint64_t inodes;	 /* inodes indexed, all trees */
	uint64_t mem_bytes;	 /* memory of the indexes and directory tables */
};

/* NULL and errno (EPERM without CAP_SYS_ADMIN, ENOSYS without fanotify). */
struct disk *disk__new(const struct disk_opts *opts);
void disk__free(struct disk *d); /* accepts NULL */

/* The fanotify fd: poll it for POLLIN, then call disk__process(). */
int disk__fd(const struct disk *d);

/*
 * Track the tree at path (a directory; symlinks are not followed, even for path itself): mark,
 * then scan it once. A tree already tracked (same directory inode, by any path) is shared,
 * and a caller that finds its scan running waits for that scan. Returns the tree, or NULL and
 * errno (ENOTDIR, ENOENT, EOPNOTSUPP for a filesystem without file handles or fanotify
 * support, ENOSPC when out of fanotify marks).
 */
struct disk_tree *disk__track(struct disk *d, const char *path);
/* Drop a reference; the last one frees the tree's index. */
void disk__untrack(struct disk *d, struct disk_tree *t);

/*
 * Read every queued event into the pending set (coalescing by name) without applying them:
 * a loop calls this when the fd is readable, so the kernel queue never fills, and applies at
 * its tick. Returns the number of events read, or -errno.
 */
int disk__read(struct disk *d);

/*
 * Read every queued event and apply them: coalesced re-stats of the changed names, scans of
 * directories that appeared, rescans of every tree after an overflow. Returns the number of
 * events read, or -errno.
 */
int disk__process(struct disk *d);

/* The tree's numbers as of the last disk__process(). 0, or -ENOENT if the tree's top
 * directory was removed. */
int disk__usage(struct disk *d, struct disk_tree *t, struct disk_usage *out);
const char *disk__tree_path(const struct disk_tree *t);

/*
 * Walk the tree again (the engine stays unlocked meanwhile) and replace the index with what
 * the walk found: catches what fanotify cannot see (writes through mmap, writes through a hard
 * link outside the tree). drift_bytes and drift_inodes get walk minus index. 0 or -errno.
 */
int disk__reconcile(struct disk *d, struct disk_tree *t, int64_t *drift_bytes,
		    int64_t *drift_inodes);

/*
 * Reconcile every tree every period_ns, from a thread of its own at idle I/O priority and
 * nice 19, so the walks stay off the event path. Drift shows in disk__stats(). 0 or -errno;
 * the thread stops in disk__free().
 */
int disk__start_reconciler(struct disk *d, uint64_t period_ns);

void disk__stats(struct disk *d, struct disk_stats *out);

/*
 * One walk, no tracking: du -s of a tree that never changes (image layers). Same rules as the
 * scan (no symlinks followed, stays on the filesystem). 0 or -errno.
 */
int disk__scan_once(const char *path, struct disk_usage *out);

/*
 * Test hook: scans (initial, rescan, reconcile) call it, unlocked, after a directory is opened
 * and before its entries are read; dir_ino is that directory. NULL: none.
 */
void disk__set_scan_hook(struct disk *d, void (*hook)(uint64_t dir_ino, void *ctx), void *ctx);

#endif /* __TALLY_DISK_H */
