/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * HTTP response bodies: a stdio stream that writes into a buffer, gzip-compressing (zlib) as it
 * goes when asked to: a compressed /metrics never holds its whole text. Buffers go back to a
 * small pool when their response is sent and are used again with their capacity and their
 * deflate state, so that a scrape does not fault in fresh pages for them.
 */
#ifndef __TALLY_BODY_H
#define __TALLY_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Buffers kept for reuse: at most BODY_POOL_MAX. One that held a body larger than
 * BODY_KEEP_MAX (a plain /metrics: 3.9 MB at 1,000 containers, in two parts) is kept too, but
 * only while such bodies keep coming: body_pool__trim gives every buffer over BODY_KEEP_MAX
 * back to the kernel once no body needed one for BODY_IDLE_NS. So a node scraped in plain
 * text does not fault in and zero megabytes of fresh pages at every scrape (about 14% of a
 * scrape's CPU), and one that stopped being scraped returns to its small memory.
 */
#define BODY_POOL_MAX 4 /* a scrape in two parts, plain or gzip'd: two each */
#define BODY_KEEP_MAX (1024 * 1024)
#define BODY_IDLE_NS  (60ull * 1000000000ull) /* four 15 s scrape intervals */

struct body_buf;

struct body_pool {
	struct body_buf *free[BODY_POOL_MAX];
	size_t n;
	uint64_t large_ns; /* CLOCK_MONOTONIC when a body last needed over BODY_KEEP_MAX */
};

struct body {
	FILE *f; /* write the body here, between body__open and body__close */
	struct body_buf *buf;
};

enum body_enc {
	BODY_PLAIN,
	BODY_GZIP, /* one gzip member (RFC 1952) */
	/*
	 * A gzip member written in two bodies at once (by two threads): the head has the
	 * member's header and deflate blocks ending on a byte boundary (a sync flush), the tail
	 * the last blocks; body__gzip_seal adds the trailer. Sent one after the other, they are
	 * one member.
	 */
	BODY_GZIP_HEAD,
	BODY_GZIP_TAIL,
};

/*
 * Start a body with a buffer from pool (or a new one; pool may be NULL), written as enc says.
 * 0, or -ENOMEM (nothing to close then).
 */
int body__open(struct body *b, struct body_pool *pool, enum body_enc enc);

/*
 * Finish the body: 0 with body__data and body__len valid until the buffer is released, or
 * -errno of a failed write (the buffer is released then).
 */
int body__close(struct body *b);

const void *body__data(const struct body_buf *buf);
size_t body__len(const struct body_buf *buf);

/*
 * Close a gzip member written as a closed BODY_GZIP_HEAD and BODY_GZIP_TAIL: the trailer (the
 * CRC and length of both parts' input) goes at the end of tail, and head takes tail along
 * (body__release of head releases both). 0 or -ENOMEM.
 */
int body__gzip_seal(struct body_buf *head, struct body_buf *tail);

/* Sent one after the other: body__release of first releases second as well. */
void body__chain(struct body_buf *first, struct body_buf *second);

/* Give a closed body's buffer back (and those chained to it): kept for the next body, or freed. */
void body__release(struct body_buf *buf);

/*
 * Give the pool's buffers over BODY_KEEP_MAX back to the kernel when no body needed one for
 * BODY_IDLE_NS before now_ns (CLOCK_MONOTONIC). The agent calls it at every collection.
 */
void body_pool__trim(struct body_pool *pool, uint64_t now_ns);

/* Free the buffers a pool keeps (none may be in use by a body). */
void body_pool__free(struct body_pool *pool);

#endif /* __TALLY_BODY_H */
