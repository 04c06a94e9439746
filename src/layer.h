/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The writable layer: a container's root filesystem, found from the mountinfo of one of its
 * processes without asking the runtime. Its writable layer is the upperdir= of the overlay
 * mounted at "/"; its image layers are the lowerdirs, which never change and so are measured
 * once (layer_cache). Pure parsers take buffers or root paths so tests feed them fixtures.
 */
#ifndef __TALLY_LAYER_H
#define __TALLY_LAYER_H

#include <stddef.h>
#include <sys/types.h>

struct disk_usage;

struct layer_info {
	char fstype[32];  /* of the mount at "/": "overlay", "ext4"... (cut to fit) */
	char *upperdir;	  /* unescaped; NULL unless overlay with an upperdir */
	char **lowerdirs; /* unescaped, top first (data-only layers left out) */
	size_t nlower;	  /* entries in lowerdirs */
	pid_t pid;	  /* whose mountinfo was read; 0 for a plain parse */
};

/*
 * Parse a whole /proc/<pid>/mountinfo text (buf, len; need not be NUL-terminated). The root is
 * the last mount listed at mount point "/" (a later mount stacked on "/" hides earlier ones).
 * Lines that do not parse are skipped. *out is overwritten, not freed first; whatever the
 * result, it is left for layer_info__free. Returns:
 *   0            overlay root with an upperdir: fstype, upperdir and lowerdirs set;
 *   -ENOENT      no mount at "/" (also for an empty text);
 *   -EMEDIUMTYPE the root is not overlay: fstype set (host-path roots, other drivers);
 *   -ENODATA     overlay without upperdir= (a read-only overlay): fstype and lowerdirs set;
 *   -EINVAL      not a single line parses;
 *   -ENOMEM.
 */
int layer__parse_mountinfo(const char *buf, size_t len, struct layer_info *out);

/*
 * Read <procroot>/<pid>/mountinfo (procroot is normally "/proc") and parse it; out->pid is set
 * whatever the result. Same returns as layer__parse_mountinfo, plus -ESRCH when the process is
 * gone or a zombie, and other -errno from reading. A zombie leader whose threads still run (its
 * main thread called pthread_exit) has no mountinfo of its own: one of its threads' is read.
 */
int layer__read_pid(const char *procroot, pid_t pid, struct layer_info *out);

/*
 * cgdir: a cgroup v2 directory. Reads its cgroup.procs and returns the answer of the first pid
 * whose mountinfo can be read, with out->pid set to it: processes that exit between the two
 * reads are skipped. -ESRCH (out->pid 0) when the cgroup has no process left (or is gone);
 * processes in child cgroups are not looked at. An error other than "process gone" for every
 * pid (EACCES, ...) is returned as such.
 */
int layer__find_for_cgroup(const char *procroot, const char *cgdir, struct layer_info *out);

void layer_info__free(struct layer_info *li); /* frees members, accepts a zeroed struct; zeroes */

/*
 * A one-line human reason for err, an error from the functions above ("root filesystem is
 * ext4, not overlay", "no process in the cgroup", ...). li (may be NULL) gives the details;
 * buf receives the text when it needs formatting. Returns buf or a static string.
 */
const char *layer__strerror(int err, const struct layer_info *li, char *buf, size_t len);

/*
 * Usage of read-only layers (image layers never change): each one is walked once with
 * disk__scan_once and then served from memory, never tracked. Paths are resolved with
 * realpath() first, so names that lead to the same directory (docker's l/<short id> symlinks)
 * share one walk. Thread-safe: concurrent callers asking for the same layer wait for one walk.
 * A failed walk is not cached: the next caller (not one already waiting) walks again.
 */
struct layer_cache;

struct layer_cache *layer_cache__new(void);    /* NULL and errno (ENOMEM) */
void layer_cache__free(struct layer_cache *c); /* accepts NULL */
/* du of the read-only layer at path. 0 or -errno (of realpath or of the walk). */
int layer_cache__usage(struct layer_cache *c, const char *path, struct disk_usage *out);
size_t layer_cache__walks(const struct layer_cache *c); /* walks done so far (tests) */

#endif /* __TALLY_LAYER_H */
