// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Response bodies (src/body.c): what is written comes back byte for byte, plain or through
 * gzip, checked with zlib's inflate and with gzip(1) as the independent decoder; buffers taken
 * from the pool again give the same bytes, and the pool keeps only what it says it keeps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zlib.h>

#include "body.h"
#include "helpers.h"
#include "util.h"

static struct body_pool pool;
static char plain_path[64], gz_path[80];

static void fini(void)
{
	body_pool__free(&pool);
	if (plain_path[0])
		unlink(plain_path);
	if (gz_path[0])
		unlink(gz_path);
}

TestSuite(body, .fini = fini, .timeout = 60);

/* Inflate a gzip member with zlib; the bytes, malloc'd. */
static unsigned char *gunzip(const void *in, size_t len, size_t *outlen)
{
	size_t cap = len * 4 + 64;
	unsigned char *out = malloc(cap);
	z_stream z = {};
	int ret;

	cr_assert_not_null(out);
	cr_assert_eq(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	do {
		if (z.total_out == cap) {
			out = realloc(out, cap *= 2);
			cr_assert_not_null(out);
		}
		z.next_out = out + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
		ret = inflate(&z, Z_FINISH);
	} while (ret == Z_BUF_ERROR && z.avail_out == 0);
	cr_assert_eq(ret, Z_STREAM_END, "inflate: %d %s", ret, z.msg ? z.msg : "");
	cr_assert_eq(z.avail_in, 0, "bytes after the gzip member");
	*outlen = z.total_out;
	inflateEnd(&z);
	return out;
}

/*
 * Write in through a body: in pieces of every size from 1 byte to 64 KiB and then the rest in
 * one fwrite larger than stdio's buffer. The closed body's buffer; the caller releases it.
 */
static struct body_buf *write_enc(const void *in, size_t len, enum body_enc enc)
{
	const char *p = in;
	struct body b;
	size_t off = 0, piece = 1;
	int err = body__open(&b, &pool, enc);

	cr_assert_eq(err, 0, "body__open: %s", strerror(-err));
	while (off < len && piece <= 65536) {
		size_t n = piece < len - off ? piece : len - off;

		cr_assert_eq(fwrite(p + off, 1, n, b.f), n);
		off += n;
		piece *= 2;
	}
	if (off < len)
		cr_assert_eq(fwrite(p + off, 1, len - off, b.f), len - off);
	err = body__close(&b);
	cr_assert_eq(err, 0, "body__close: %s", strerror(-err));
	return b.buf;
}

static struct body_buf *write_body(const void *in, size_t len, bool gzip)
{
	return write_enc(in, len, gzip ? BODY_GZIP : BODY_PLAIN);
}

/* head's and tail's bytes one after the other, malloc'd. */
static unsigned char *joined(const struct body_buf *head, const struct body_buf *tail, size_t *len)
{
	size_t h = body__len(head), t = body__len(tail);
	unsigned char *out = malloc(h + t + 1);

	cr_assert_not_null(out);
	memcpy(out, body__data(head), h);
	memcpy(out + h, body__data(tail), t);
	*len = h + t;
	return out;
}

static void expect_round_trip(const void *in, size_t len, bool gzip)
{
	struct body_buf *buf = write_body(in, len, gzip);
	const unsigned char *out = body__data(buf);
	size_t outlen = body__len(buf), backlen = 0;
	unsigned char *back;

	if (!gzip) {
		cr_expect_eq(outlen, len, "plain: %zu bytes out of %zu in", outlen, len);
		cr_expect(outlen == len && !memcmp(out, in, len), "plain: %zu bytes differ", len);
		body__release(buf);
		return;
	}
	cr_assert_geq(outlen, 18, "a gzip member has a 10-byte header and an 8-byte trailer");
	cr_expect(!memcmp(out, "\x1f\x8b\x08", 3), "gzip magic and deflate");
	back = gunzip(out, outlen, &backlen);
	cr_expect_eq(backlen, len);
	cr_expect(backlen == len && (len == 0 || !memcmp(back, in, len)),
		  "gzip: round trip of %zu bytes", len);
	free(back);
	body__release(buf);
}

/* An exposition-like text of about size bytes: the same labels over and over. */
static char *exposition_like(size_t size, size_t *len)
{
	char *text = malloc(size);
	size_t n = 0;

	cr_assert_not_null(text);
	for (int i = 0; n + 200 < size; i++)
		n += (size_t)snprintf(text + n, size - n,
				      "container_cpu_usage_seconds_total{id=\"/kubepods/pod%d\","
				      "pod_uid=\"\",cpu=\"total\"} %d.%09d\n",
				      i % 977, i, i * 7919 % 1000000000);
	*len = n;
	return text;
}

static unsigned char *noise_new(size_t len)
{
	unsigned char *noise = malloc(len);
	uint64_t x = 0x9e3779b97f4a7c15ull;

	cr_assert_not_null(noise);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		noise[i] = (unsigned char)x;
	}
	return noise;
}

Test(body, plain_and_gzip_round_trip)
{
	size_t n;
	char *text = exposition_like(3u << 20, &n);
	unsigned char *noise = noise_new(1 << 20);

	for (int gzip = 0; gzip < 2; gzip++) {
		expect_round_trip("", 0, gzip);
		expect_round_trip("a", 1, gzip);
		expect_round_trip(text, n, gzip);
		/* Incompressible: the gzip output outgrows its first chunks. */
		expect_round_trip(noise, 1 << 20, gzip);
	}
	free(text);
	free(noise);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* gzip(1), the independent decoder, must find gz a valid member holding exactly text. */
static void expect_gzip_1_agrees(const void *text, size_t n, const void *gz, size_t gzlen)
{
	char cmd[512], out[256];

	snprintf(plain_path, sizeof(plain_path), "/tmp/tally-test-body-%d.txt", (int)getpid());
	snprintf(gz_path, sizeof(gz_path), "%s.gz", plain_path);
	write_file(plain_path, text, n);
	write_file(gz_path, gz, gzlen);
	snprintf(cmd, sizeof(cmd), "gzip -tv %s 2>&1 && gzip -dc %s | cmp - %s 2>&1", gz_path,
		 gz_path, plain_path);
	cr_expect_eq(th_run(cmd, out, sizeof(out)), 0, "gzip(1) disagrees: %s", out);
}

Test(body, gzip_read_back_by_gzip_1)
{
	size_t n, gzlen;
	char *text = exposition_like(3u << 20, &n);
	struct body_buf *buf = write_body(text, n, true);

	gzlen = body__len(buf);
	cr_expect_lt(gzlen, n / 5, "repetitive text shrinks: %zu of %zu bytes", gzlen, n);
	expect_gzip_1_agrees(text, n, body__data(buf), gzlen);
	body__release(buf);
	free(text);
}

/*
 * A buffer taken from the pool again, with its deflate state reset, gives the same bytes: gzip
 * after gzip, plain after gzip, gzip after plain. Buffers are reused, not allocated anew.
 */
Test(body, pool_reuse_gives_the_same_bytes)
{
	size_t n;
	char *text = exposition_like(200000, &n);
	struct body_buf *first, *again, *at_once[BODY_POOL_MAX + 1];

	first = write_body(text, n, true);
	cr_assert_lt(body__len(first), BODY_KEEP_MAX);
	body__release(first);
	cr_assert_eq(pool.n, 1, "a small buffer is kept");
	again = write_body(text, n, true);
	cr_expect_eq(again, first, "the kept buffer is used again");
	body__release(again);
	for (int i = 0; i < 6; i++) {
		bool gzip = i % 3 != 1;

		expect_round_trip(text, n, gzip);
		cr_expect_eq(pool.n, 1, "one body at a time: one buffer, used again (round %d)", i);
	}
	/* Bodies at once: as many buffers, all kept up to BODY_POOL_MAX; one more is freed. */
	for (int i = 0; i < BODY_POOL_MAX + 1; i++)
		at_once[i] = write_body("x", 1, i % 2);
	cr_expect_eq(pool.n, 0);
	for (int i = 0; i < BODY_POOL_MAX + 1; i++)
		body__release(at_once[i]);
	cr_expect_eq(pool.n, BODY_POOL_MAX, "the pool keeps %d", BODY_POOL_MAX);
	free(text);
}

/*
 * A buffer that held a body larger than BODY_KEEP_MAX is kept while such bodies keep coming,
 * and given back to the kernel by body_pool__trim once none came for BODY_IDLE_NS; a small
 * buffer stays.
 */
Test(body, large_buffers_are_kept_only_while_needed)
{
	size_t n;
	char *text = exposition_like(3u << 20, &n);
	struct body_buf *big = write_body(text, n, false), *small = write_body("x 1\n", 4, false);
	uint64_t t0;

	cr_assert_gt(body__len(big), BODY_KEEP_MAX);
	body__release(small);
	body__release(big);
	t0 = clock__monotonic_ns();
	cr_assert_eq(pool.n, 2, "the pool keeps %zu of 2", pool.n);
	body_pool__trim(&pool, t0);
	cr_expect_eq(pool.n, 2, "trimmed at once");
	/* The big one is taken again (last in, first out). */
	big = write_body(text, n, false);
	cr_expect_eq(pool.n, 1);
	body__release(big);
	body_pool__trim(&pool, clock__monotonic_ns() + BODY_IDLE_NS / 2);
	cr_expect_eq(pool.n, 2, "trimmed before BODY_IDLE_NS");
	body_pool__trim(&pool, clock__monotonic_ns() + BODY_IDLE_NS + 1000000000ull);
	cr_expect_eq(pool.n, 1, "the big buffer outlived BODY_IDLE_NS unused");
	small = write_body("x 1\n", 4, false);
	cr_expect_eq(pool.n, 0);
	body__release(small);
	free(text);
}

/*
 * One gzip member written as two bodies (the agent's two threads): split anywhere, including
 * an empty part, the bytes one after the other decode to the whole text, with zlib and gzip(1).
 */
Test(body, gzip_in_two_parts_is_one_member)
{
	size_t n, cuts[] = {0, 1, 4096, 0, 0}, gzlen, backlen;
	char *text = exposition_like(2u << 20, &n);
	unsigned char *gz, *back;

	cuts[3] = n / 2;
	cuts[4] = n;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		struct body_buf *head = write_enc(text, cuts[i], BODY_GZIP_HEAD);
		struct body_buf *tail = write_enc(text + cuts[i], n - cuts[i], BODY_GZIP_TAIL);

		cr_assert_eq(body__gzip_seal(head, tail), 0);
		gz = joined(head, tail, &gzlen);
		back = gunzip(gz, gzlen, &backlen);
		cr_expect(backlen == n && !memcmp(back, text, n),
			  "cut at %zu: %zu bytes back of %zu", cuts[i], backlen, n);
		free(back);
		if (i == 3)
			expect_gzip_1_agrees(text, n, gz, gzlen);
		free(gz);
		body__release(head); /* and tail, chained by the seal */
		cr_expect_eq(pool.n, 2, "both parts back in the pool (cut %zu)", cuts[i]);
	}
	free(text);
}
