/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The Prometheus text exposition (format 0.0.4) of a collector's latest generation, for the
 * agent's GET /metrics: cAdvisor's names where cAdvisor has the metric, tally_* for the rest
 * and for tally itself. docs/METRICS.md lists every metric. Also whether a client takes gzip.
 */
#ifndef __TALLY_PROM_H
#define __TALLY_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "collect.h"

/* The content type of what prom__write writes. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What the agent knows about itself, for the tally_* self metrics. */
struct prom_agent {
	uint64_t collections;	     /* completed collections */
	uint64_t collection_ns_sum;  /* their summed wall time */
	uint64_t collection_ns_last; /* the wall time of the latest one */
	uint64_t collection_errors;  /* collections that failed */
	uint64_t scrapes;	     /* /metrics requests served, this one excluded */
	uint64_t scrape_ns_sum;	     /* their summed time */
	uint64_t requests_rejected;  /* refused: a 4xx, or cut off by MHD after the request line */
};

/*
 * Write every metric of c's latest generation to out, each family once with its HELP and TYPE
 * lines, no timestamps. agent NULL: the agent's own series are left out, and so is whatever
 * c does not have (no network path, no fanotify, no generation yet). The caller keeps
 * collector__collect from running meanwhile. 0, or -errno of a write error.
 */
int prom__write(FILE *out, struct collector *c, const struct prom_agent *agent);

/*
 * The same text in PROM_PARTS parts, which two threads may write at once: a document takes the
 * containers' usage of c's latest generation once (NULL when out of memory), and part k of it
 * written after part k-1 is what prom__write writes. Families are never split between parts.
 * The caller keeps collector__collect from running until the document is freed.
 */
#define PROM_PARTS 2

struct prom_doc;

struct prom_doc *prom__doc_new(struct collector *c, const struct prom_agent *agent);
int prom__doc_write(FILE *out, const struct prom_doc *d, int part);
void prom__doc_free(struct prom_doc *d);

/*
 * Whether an Accept-Encoding header value (RFC 9110, section 12.5.3) accepts gzip: "gzip" or
 * "x-gzip" listed with a q above 0, or else "*" listed with a q above 0. NULL (no header) and
 * "" say no: the answer is then sent as it is.
 */
bool prom__accepts_gzip(const char *accept_encoding);

#endif /* __TALLY_PROM_H */
