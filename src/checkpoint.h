/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The writable-layer checkpoint: each container's last known layer usage, kept in the agent's
 * state dir so that a restarted agent serves numbers at once (marked as not verified) while
 * it walks the trees again in the background. Pure parse and format over buffers, so tests
 * feed them fixtures; the file is replaced atomically (write, fsync, rename).
 *
 * Format, text: a first line "tally-layers 1", then one line per container:
 *   <cgroup id> <used bytes> <inodes> <timestamp ns> <upperdir>
 * with the upperdir's bytes below '!', above '~' and '\' written as \ooo (octal, as
 * /proc/self/mountinfo does), so any path fits on one line.
 */
#ifndef __TALLY_CHECKPOINT_H
#define __TALLY_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "disk.h"

#define CHECKPOINT_FILE "layers"

struct ckpt_entry {
	uint64_t cgid;
	struct disk_usage usage;
	char *upperdir; /* malloc'd */
};

struct ckpt {
	struct ckpt_entry *e; /* sorted by cgid */
	size_t n, cap;
};

/*
 * Parse a checkpoint (buf NUL-terminated) into c (zeroed or freed). Lines that do not parse
 * are skipped and counted in *bad (a torn or foreign line loses only itself). 0, -EINVAL when
 * the header is not this version's, or -ENOMEM.
 */
int ckpt__parse(const char *buf, struct ckpt *c, size_t *bad);
/* Write c in the format above. 0 or -errno (of the stream). */
int ckpt__write(FILE *f, const struct ckpt *c);
/* Append an entry (copies upperdir); ckpt__sort before lookups. 0 or -ENOMEM. */
int ckpt__add(struct ckpt *c, uint64_t cgid, const char *upperdir, const struct disk_usage *u);
void ckpt__sort(struct ckpt *c);
/* The entry of cgid whose upperdir is upperdir, or NULL. */
const struct ckpt_entry *ckpt__find(const struct ckpt *c, uint64_t cgid, const char *upperdir);
void ckpt__free(struct ckpt *c);

/* Load dir/CHECKPOINT_FILE: 0 (an empty c when there is none yet), or -errno. */
int ckpt__load(const char *dir, struct ckpt *c, size_t *bad);
/* Replace dir/CHECKPOINT_FILE atomically, creating dir (0700) if missing. 0 or -errno. */
int ckpt__save(const char *dir, const struct ckpt *c);

/* Remove dir/CHECKPOINT_FILE, and dir when that leaves it empty. 0 (also when absent) or -errno. */
int ckpt__remove(const char *dir);

#endif /* __TALLY_CHECKPOINT_H */
