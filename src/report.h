/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The stats document: the latest generation of a collector as JSON, with CRI field names
 * (ContainerStats, PodSandboxStats). docs/ARCHITECTURE.md shows its shape. One writer for
 * `tally stats --json` and the agent's API, so both always say the same.
 */
#ifndef __TALLY_REPORT_H
#define __TALLY_REPORT_H

#include <stdbool.h>

#include "collect.h"
#include "json.h"

/* {"timestamp_ns", "containers": [...], "pods": [...]} and with others "cgroups": [...]. */
void report__document(struct jw *w, const struct collector *c, bool others);
/* The "containers" array alone; the "pods" array alone. */
void report__containers(struct jw *w, const struct collector *c);
void report__pods(struct jw *w, const struct collector *c);
/* One container object, by its full id. 0, or -ENOENT (nothing written) when unknown. */
int report__container(struct jw *w, const struct collector *c, const char *id);

/*
 * The containers of every pod of c's latest generation, grouped once, so that listing each
 * pod's is not a pass over every cgroup per pod (quadratic on a node with many pods). For the
 * JSON and the table alike. c must not collect while it is in use. Without memory for the
 * grouping, each lookup makes that pass instead: the same answers, only slower.
 */
struct pod_member;
struct pod_members {
	const struct collector *c;
	struct pod_member *v; /* sorted by pod uid, then collector index */
	size_t n;
};

void pod_members__init(struct pod_members *m, const struct collector *c);
void pod_members__free(struct pod_members *m); /* accepts a zeroed or freed one */
/*
 * The next container of pod uid, in collector order: its collector index in *i, false after
 * the last. *pos is the cursor: 0 before the first call, then left as the call leaves it.
 */
bool pod_members__next(const struct pod_members *m, const char *uid, size_t *pos, size_t *i);

#endif /* __TALLY_REPORT_H */
