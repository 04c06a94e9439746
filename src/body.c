// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Response bodies written through stdio into a reusable buffer, plain or gzip. See body.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "body.h"
#include "util.h"

/* stdio hands the writer this much at a time; also the least room kept for deflate's output. */
#define BODY_CHUNK (64 * 1024)

struct body_buf {
	unsigned char *p;
	size_t len, cap;
	struct body_pool *pool; /* where it goes back, or NULL: freed */
	struct body_buf *next;	/* released with it (body__chain, body__gzip_seal) */
	enum body_enc enc;
	int z_bits; /* z holds an initialised deflate state of these windowBits, or 0 */
	int err;    /* the first write error */
	uLong crc;  /* HEAD and TAIL: of the input, for the trailer */
	uint64_t in_len;
	z_stream z;
	char stdio[BODY_CHUNK];
};

static bool enc__deflates(enum body_enc enc)
{
	return enc != BODY_PLAIN;
}

static void buf__free(struct body_buf *buf)
{
	if (!buf)
		return;
	if (buf->z_bits)
		deflateEnd(&buf->z);
	free(buf->p);
	free(buf);
}

/* Room for at least `more` bytes after len. */
static int buf__reserve(struct body_buf *buf, size_t more)
{
	size_t cap = buf->cap ? buf->cap : BODY_CHUNK;
	unsigned char *p;

	if (buf->cap - buf->len >= more)
		return 0;
	if (more > SIZE_MAX / 2 - buf->len)
		return -ENOMEM;
	while (cap - buf->len < more)
		cap *= 2;
	p = realloc(buf->p, cap);
	if (!p)
		return -ENOMEM;
	buf->p = p;
	buf->cap = cap;
	return 0;
}

/* Compress what is in z's input (flush: Z_NO_FLUSH, Z_SYNC_FLUSH or Z_FINISH) into the buffer. */
static int buf__deflate(struct body_buf *buf, int flush)
{
	int ret;

	do {
		int err = buf__reserve(buf, BODY_CHUNK);

		if (err)
			return err;
		buf->z.next_out = buf->p + buf->len;
		buf->z.avail_out =
		    (uInt)(buf->cap - buf->len > UINT_MAX ? UINT_MAX : buf->cap - buf->len);
		ret = deflate(&buf->z, flush);
		buf->len = (size_t)(buf->z.next_out - buf->p);
		if (ret == Z_STREAM_ERROR)
			return -EINVAL;
	} while (flush == Z_FINISH ? ret != Z_STREAM_END
				   : buf->z.avail_in > 0 || (flush && !buf->z.avail_out));
	return 0;
}

/* fopencookie's writer: size bytes appended, or compressed and appended. */
static ssize_t buf__write(void *cookie, const char *data, size_t size)
{
	struct body_buf *buf = cookie;
	int err;

	if (buf->err)
		return -1;
	if (enc__deflates(buf->enc)) {
		err = 0;
		if (buf->enc != BODY_GZIP) {
			buf->crc = crc32_z(buf->crc, (const Bytef *)data, size);
			buf->in_len += size;
		}
		/* size is a stdio chunk or one large fwrite: avail_in is 32 bits, go in slices. */
		for (size_t done = 0; !err && done < size;) {
			size_t n = size - done > UINT_MAX ? UINT_MAX : size - done;

			buf->z.next_in = (Bytef *)(uintptr_t)(data + done);
			buf->z.avail_in = (uInt)n;
			err = buf__deflate(buf, Z_NO_FLUSH);
			done += n;
		}
	} else {
		err = buf__reserve(buf, size);
		if (!err) {
			memcpy(buf->p + buf->len, data, size);
			buf->len += size;
		}
	}
	if (err) {
		buf->err = err;
		return -1;
	}
	return (ssize_t)size;
}

/*
 * The pooled buffer that suits a body, or NULL: for a compressed one (z_bits: its windowBits),
 * one with that deflate state already, else the smallest, but never one over BODY_KEEP_MAX
 * without that state (a gzip'd scrape would give a plain scrape's big buffers deflate states
 * of their own, and hold all four); for a plain one (0), the largest.
 */
static struct body_buf *pool__take(struct body_pool *pool, int z_bits)
{
	struct body_buf *buf;
	size_t best = 0;

	for (size_t i = 1; i < pool->n; i++) {
		const struct body_buf *a = pool->free[i], *b = pool->free[best];
		bool better;

		if (z_bits && (a->z_bits == z_bits) != (b->z_bits == z_bits))
			better = a->z_bits == z_bits;
		else
			better = z_bits ? a->cap < b->cap : a->cap > b->cap;
		if (better)
			best = i;
	}
	buf = pool->free[best];
	if (z_bits && buf->z_bits != z_bits && buf->cap > BODY_KEEP_MAX)
		return NULL;
	pool->free[best] = pool->free[--pool->n];
	return buf;
}

/* The gzip member's header (RFC 1952): deflate, no flags, no time, Unix. */
static const unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};

int body__open(struct body *b, struct body_pool *pool, enum body_enc enc)
{
	static const cookie_io_functions_t io = {.write = buf__write};
	/* zlib's own gzip wrapper for a whole member, raw deflate for its two parts. */
	int bits = enc == BODY_GZIP ? 16 + MAX_WBITS : -MAX_WBITS;
	struct body_buf *buf = NULL;

	*b = (struct body){};
	if (pool && pool->n)
		buf = pool__take(pool, enc__deflates(enc) ? bits : 0);
	if (!buf && !(buf = calloc(1, sizeof(*buf))))
		return -ENOMEM;
	buf->pool = pool;
	buf->next = NULL;
	buf->len = 0;
	buf->err = 0;
	buf->enc = enc;
	buf->crc = crc32_z(0, NULL, 0);
	buf->in_len = 0;
	/* Never NULL, even for an empty body. */
	if (buf__reserve(buf, sizeof(gzip_header)))
		goto fail;
	if (enc__deflates(enc)) {
		if (buf->z_bits && buf->z_bits != bits) {
			deflateEnd(&buf->z);
			buf->z_bits = 0;
		}
		/*
		 * Level 2: the exposition repeats itself (the same labels on every line), so a fast
		 * level already shrinks it 25 times over. On the 1,000-container benchmark's text
		 * (3.9 MB) level 2 gave 154 KB against level 1's 173 KB, in the same time.
		 */
		if (buf->z_bits) {
			if (deflateReset(&buf->z) != Z_OK)
				goto fail;
		} else {
			memset(&buf->z, 0, sizeof(buf->z));
			if (deflateInit2(&buf->z, 2, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) !=
			    Z_OK)
				goto fail;
			buf->z_bits = bits;
		}
	}
	if (enc == BODY_GZIP_HEAD) {
		memcpy(buf->p, gzip_header, sizeof(gzip_header));
		buf->len = sizeof(gzip_header);
	}
	b->f = fopencookie(buf, "w", io);
	if (!b->f)
		goto fail;
	/* The buffer's own stdio chunk: glibc would give a cookie stream only BUFSIZ. */
	setvbuf(b->f, buf->stdio, _IOFBF, sizeof(buf->stdio));
	b->buf = buf;
	return 0;
fail:
	buf->pool = NULL;
	buf__free(buf);
	return -ENOMEM;
}

int body__close(struct body *b)
{
	struct body_buf *buf = b->buf;
	int err = 0;

	if (!b->f)
		return -EINVAL;
	if (fflush(b->f) || ferror(b->f))
		err = buf->err ? buf->err : -EIO;
	fclose(b->f);
	b->f = NULL;
	if (!err && enc__deflates(buf->enc)) {
		buf->z.next_in = NULL;
		buf->z.avail_in = 0;
		/* The head ends on a byte boundary and leaves the last block to the tail. */
		err = buf__deflate(buf, buf->enc == BODY_GZIP_HEAD ? Z_SYNC_FLUSH : Z_FINISH);
	}
	if (err) {
		body__release(buf);
		b->buf = NULL;
	}
	return err;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

int body__gzip_seal(struct body_buf *head, struct body_buf *tail)
{
	uLong crc = crc32_combine(head->crc, tail->crc, (z_off_t)tail->in_len);

	if (buf__reserve(tail, 8))
		return -ENOMEM;
	put_le32(tail->p + tail->len, (uint32_t)crc);
	/* ISIZE: the input's length modulo 2^32. */
	put_le32(tail->p + tail->len + 4, (uint32_t)(head->in_len + tail->in_len));
	tail->len += 8;
	body__chain(head, tail);
	return 0;
}

void body__chain(struct body_buf *first, struct body_buf *second)
{
	first->next = second;
}

const void *body__data(const struct body_buf *buf)
{
	return buf->p;
}

size_t body__len(const struct body_buf *buf)
{
	return buf->len;
}

void body__release(struct body_buf *buf)
{
	while (buf) {
		struct body_buf *next = buf->next;
		struct body_pool *pool = buf->pool;

		buf->next = NULL;
		if (pool && buf->len > BODY_KEEP_MAX)
			pool->large_ns = clock__monotonic_ns();
		if (pool && pool->n < BODY_POOL_MAX)
			pool->free[pool->n++] = buf;
		else
			buf__free(buf);
		buf = next;
	}
}

void body_pool__trim(struct body_pool *pool, uint64_t now_ns)
{
	size_t out = 0;

	if (now_ns - pool->large_ns <= BODY_IDLE_NS)
		return;
	for (size_t i = 0; i < pool->n; i++) {
		if (pool->free[i]->cap > BODY_KEEP_MAX)
			buf__free(pool->free[i]);
		else
			pool->free[out++] = pool->free[i];
	}
	pool->n = out;
}

void body_pool__free(struct body_pool *pool)
{
	while (pool->n)
		buf__free(pool->free[--pool->n]);
}
