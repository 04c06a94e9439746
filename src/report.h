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

#endif /* __TALLY_REPORT_H */
