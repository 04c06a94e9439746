/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A bounded worker for the first walk of writable layers (disk__track), so that the agent's
 * loop keeps serving while a restart or a burst of new containers brings many trees to walk.
 * One thread, started on the first job, at idle I/O priority; results are picked up by the
 * loop at its next collection. disk__track is safe to call beside disk__process (disk.h).
 */
#ifndef __TALLY_SCANQ_H
#define __TALLY_SCANQ_H

#include <stdint.h>

struct disk;
struct disk_tree;
struct scanq;

struct scanq *scanq__new(struct disk *d); /* NULL and errno */
/*
 * Stop: the walk under way finishes first (a walk cannot be interrupted); trees walked but
 * not picked up are untracked. Accepts NULL.
 */
void scanq__free(struct scanq *q);

/* Queue the walk of path for key (a cgroup id). 0 or -ENOMEM. */
int scanq__submit(struct scanq *q, uint64_t key, const char *path);
/*
 * Each finished walk, once: done(key, tree, err, ctx) with the tracked tree, or NULL and the
 * -errno of disk__track. The callback owns the tree (disk__untrack it if unwanted).
 */
void scanq__drain(struct scanq *q,
		  void (*done)(uint64_t key, struct disk_tree *t, int err, void *ctx), void *ctx);
/* Walks queued or under way, not yet drained. */
unsigned scanq__pending(struct scanq *q);

#endif /* __TALLY_SCANQ_H */
