// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * JSON writer tests. Every expected output is spelled out byte for byte: callers and the
 * golden files of other tests depend on the exact format, not just on it parsing.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

/*
 * Kept as its own literal: "\xbd" "b" must not become the escape "\xbdb". For the same reason
 * letters after a hex escape in the inputs below are never hex digits ("\x80z").
 */
#define FFFD "\xef\xbf\xbd"

struct sink {
	char *buf;
	size_t len;
	FILE *f;
	struct jw *w;
};

static void sink_open(struct sink *s, bool pretty)
{
	s->buf = NULL;
	s->len = 0;
	s->f = open_memstream(&s->buf, &s->len);
	cr_assert_not_null(s->f, "open_memstream: %m");
	s->w = jw__new(s->f, pretty);
	cr_assert_not_null(s->w, "jw__new: %m");
}

/* Returns the output, NUL-terminated by open_memstream; the caller frees it. */
static char *sink_close(struct sink *s)
{
	jw__free(s->w);
	s->w = NULL;
	cr_assert_eq(fclose(s->f), 0);
	s->f = NULL;
	return s->buf;
}

/* cr_expect, not cr_assert, so the buffer is freed and ASan stays quiet on failure too. */
static void sink_expect(struct sink *s, const char *want)
{
	char *got = sink_close(s);
	size_t len = s->len;

	cr_expect(len == strlen(want) && memcmp(got, want, len) == 0,
		  "got '%s' (%zu bytes), want '%s' (%zu bytes)", got, len, want, strlen(want));
	free(got);
}

static char *render_string(const char *in, size_t len, size_t *outlen)
{
	struct sink s = {0};
	char *got = NULL;

	sink_open(&s, false);
	jw__string_len(s.w, in, len);
	got = sink_close(&s);
	if (outlen)
		*outlen = s.len;
	return got;
}

static void expect_string(const char *in, size_t len, const char *want)
{
	size_t got_len = 0;
	char *got = render_string(in, len, &got_len);

	cr_expect(got_len == strlen(want) && memcmp(got, want, got_len) == 0,
		  "input of %zu bytes: got '%s', want '%s'", len, got, want);
	free(got);
}

#define EXPECT_STRING(lit, want) expect_string(lit, sizeof(lit) - 1, want)

Test(json, empty_containers)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__begin_object(s.w);
	jw__end_object(s.w);
	sink_expect(&s, "{}");

	sink_open(&s, false);
	jw__begin_array(s.w);
	jw__end_array(s.w);
	sink_expect(&s, "[]");

	sink_open(&s, true);
	jw__begin_object(s.w);
	jw__end_object(s.w);
	sink_expect(&s, "{}\n");

	sink_open(&s, true);
	jw__begin_array(s.w);
	jw__end_array(s.w);
	sink_expect(&s, "[]\n");
}

Test(json, nested_compact)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__begin_object(s.w);
	jw__kv_u64(s.w, "a", 1);
	jw__key(s.w, "b");
	jw__begin_array(s.w);
	jw__u64(s.w, 1);
	jw__u64(s.w, 2);
	jw__begin_object(s.w);
	jw__key(s.w, "c");
	jw__begin_array(s.w);
	jw__end_array(s.w);
	jw__end_object(s.w);
	jw__begin_array(s.w);
	jw__begin_array(s.w);
	jw__end_array(s.w);
	jw__end_array(s.w);
	jw__end_array(s.w);
	jw__key(s.w, "d");
	jw__begin_object(s.w);
	jw__kv_null(s.w, "e");
	jw__key(s.w, "f");
	jw__bool(s.w, true);
	jw__key(s.w, "g");
	jw__bool(s.w, false);
	jw__kv_string(s.w, "h", "x");
	jw__end_object(s.w);
	jw__key(s.w, "i");
	jw__begin_object(s.w);
	jw__end_object(s.w);
	jw__end_object(s.w);
	sink_expect(&s, "{\"a\":1,\"b\":[1,2,{\"c\":[]},[[]]],"
			"\"d\":{\"e\":null,\"f\":true,\"g\":false,\"h\":\"x\"},\"i\":{}}");
}

Test(json, array_commas)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__begin_array(s.w);
	jw__u64(s.w, 1);
	jw__string(s.w, "x");
	jw__null(s.w);
	jw__bool(s.w, true);
	jw__i64(s.w, -1);
	jw__double(s.w, 2.5);
	jw__begin_object(s.w);
	jw__end_object(s.w);
	jw__string(s.w, NULL);
	jw__end_array(s.w);
	sink_expect(&s, "[1,\"x\",null,true,-1,2.5,{},null]");
}

Test(json, integer_extremes)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__begin_array(s.w);
	jw__u64(s.w, 0);
	jw__u64(s.w, UINT64_MAX);
	jw__i64(s.w, INT64_MIN);
	jw__i64(s.w, INT64_MAX);
	jw__i64(s.w, 0);
	jw__i64(s.w, -1);
	jw__u64(s.w, (uint64_t)1 << 53 | 1); /* not representable as a double */
	jw__end_array(s.w);
	sink_expect(&s, "[0,18446744073709551615,-9223372036854775808,9223372036854775807,0,-1,"
			"9007199254740993]");
}

Test(json, doubles)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {0.0, "0"},
	    {-0.0, "-0"},
	    {0.1, "0.1"},
	    {0.5, "0.5"},
	    {100.0, "100"},
	    {-2.25, "-2.25"},
	    {1.0 / 3.0, "0.3333333333333333"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {1e21, "1e+21"},
	    {1.5e-7, "1.5e-07"},
	    {123456789012345678.0, "1.2345678901234568e+17"},
	    {DBL_MAX, "1.7976931348623157e+308"},
	    {-DBL_MIN, "-2.2250738585072014e-308"},
	    {NAN, "null"},
	    {-NAN, "null"},
	    {INFINITY, "null"},
	    {-INFINITY, "null"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sink s = {0};

		sink_open(&s, false);
		jw__double(s.w, cases[i].v);
		sink_expect(&s, cases[i].want);
	}
}

/* Inside an object too: null must take the key's place, not lose it. */
Test(json, non_finite_in_object)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__begin_object(s.w);
	jw__key(s.w, "a");
	jw__double(s.w, NAN);
	jw__key(s.w, "b");
	jw__double(s.w, 1.0);
	jw__end_object(s.w);
	sink_expect(&s, "{\"a\":null,\"b\":1}");
}

static uint64_t rng_next(uint64_t *state)
{
	/* xorshift64*: the same sequence on every libc, so a printed seed reproduces a failure */
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t test_seed(void)
{
	const char *env = getenv("TALLY_TEST_SEED");
	uint64_t seed = 0;

	if (env && *env)
		seed = strtoull(env, NULL, 0);
	else
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	/* xorshift never leaves 0 */
	return seed ? seed : 1;
}

/* number = [ "-" ] int [ frac ] [ exp ] from RFC 8259, nothing before or after */
static bool is_json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (*p >= '0' && *p <= '9')
			p++;
	} else {
		return false;
	}
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

Test(json, doubles_round_trip)
{
	uint64_t seed = test_seed();
	uint64_t state = seed;

	for (int i = 0; i < 10000; i++) {
		uint64_t bits = rng_next(&state);
		struct sink s = {0};
		char *got = NULL;
		double v = 0;
		double back = 0;
		bool ok = false;

		memcpy(&v, &bits, sizeof(v));
		sink_open(&s, false);
		jw__double(s.w, v);
		got = sink_close(&s);
		if (isfinite(v)) {
			back = strtod(got, NULL);
			ok = is_json_number(got) && back == v && !signbit(back) == !signbit(v);
		} else {
			ok = strcmp(got, "null") == 0;
		}
		cr_expect(ok, "seed %#llx, case %d: %a written as '%s'", (unsigned long long)seed,
			  i, v, got);
		free(got);
		if (!ok)
			break;
	}
}

Test(json, control_characters)
{
	/* written out rather than computed, so a wrong formula in the writer cannot hide here */
	static const char *const want[0x20] = {
	    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
	    "\\b",     "\\t",	  "\\n",     "\\u000b", "\\f",	   "\\r",     "\\u000e", "\\u000f",
	    "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
	    "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
	};
	char all_in[0x21] = "";
	char all_want[0x21 * 6 + 3] = "\"";

	for (int c = 0; c < 0x20; c++) {
		char in[3] = {'a', (char)c, 'b'};
		char expect[16] = "";

		snprintf(expect, sizeof(expect), "\"a%sb\"", want[c]);
		expect_string(in, sizeof(in), expect);
		all_in[c] = (char)c;
		strcat(all_want, want[c]);
	}
	EXPECT_STRING("a\x7fz", "\"a\\u007fz\"");

	/* all of them in a row: no verbatim run may swallow one */
	all_in[0x20] = 0x7f;
	strcat(all_want, "\\u007f\"");
	expect_string(all_in, sizeof(all_in), all_want);
}

Test(json, quote_backslash)
{
	EXPECT_STRING("\"", "\"\\\"\"");
	EXPECT_STRING("\\", "\"\\\\\"");
	EXPECT_STRING("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
	EXPECT_STRING("\\\"\\\"", "\"\\\\\\\"\\\\\\\"\"");
	EXPECT_STRING("", "\"\"");
	EXPECT_STRING(" ~", "\" ~\"");
}

Test(json, utf8_valid_kept)
{
	static const char *const valid[] = {
	    "\xc3\xa9",		/* U+00E9 */
	    "\xe2\x82\xac",	/* U+20AC */
	    "\xf0\x9f\x98\x80", /* U+1F600 */
	    "\xc2\x80",		/* U+0080, smallest 2-byte */
	    "\xdf\xbf",		/* U+07FF, largest 2-byte */
	    "\xe0\xa0\x80",	/* U+0800, smallest 3-byte */
	    "\xed\x9f\xbf",	/* U+D7FF, just below the surrogates */
	    "\xee\x80\x80",	/* U+E000, just above them */
	    "\xef\xbf\xbd",	/* U+FFFD itself */
	    "\xef\xbf\xbf",	/* U+FFFF */
	    "\xf0\x90\x80\x80", /* U+10000, smallest 4-byte */
	    "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last code point */
	};

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		char want[16] = "";

		snprintf(want, sizeof(want), "\"%s\"", valid[i]);
		expect_string(valid[i], strlen(valid[i]), want);
	}
	EXPECT_STRING("caf\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80!",
		      "\"caf\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80!\"");
}

/* One U+FFFD per maximal subpart, as documented in json.c. */
Test(json, utf8_stray_continuation)
{
	EXPECT_STRING("\x80", "\"" FFFD "\"");
	EXPECT_STRING("\xbf", "\"" FFFD "\"");
	EXPECT_STRING("a\x80z", "\"a" FFFD "z\"");
	EXPECT_STRING("\x80\x80\x80", "\"" FFFD FFFD FFFD "\"");
	/* a complete sequence followed by one continuation too many */
	EXPECT_STRING("\xc3\xa9\xa9", "\"\xc3\xa9" FFFD "\"");
}

Test(json, utf8_overlong)
{
	EXPECT_STRING("\xc0\x80", "\"" FFFD FFFD "\""); /* NUL in 2 bytes */
	EXPECT_STRING("\xc0\xaf", "\"" FFFD FFFD "\""); /* '/' in 2 bytes */
	EXPECT_STRING("\xc1\xbf", "\"" FFFD FFFD "\"");
	EXPECT_STRING("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\"");
	EXPECT_STRING("\xe0\x9f\xbf", "\"" FFFD FFFD FFFD "\""); /* U+07FF in 3 bytes */
	EXPECT_STRING("\xf0\x80\x80\xaf", "\"" FFFD FFFD FFFD FFFD "\"");
	EXPECT_STRING("\xf0\x8f\xbf\xbf", "\"" FFFD FFFD FFFD FFFD "\""); /* U+FFFF in 4 */
}

Test(json, utf8_surrogates)
{
	EXPECT_STRING("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\""); /* U+D800 */
	EXPECT_STRING("\xed\xbf\xbf", "\"" FFFD FFFD FFFD "\""); /* U+DFFF */
	/* CESU-8 pair for U+1F600 */
	EXPECT_STRING("\xed\xa0\xbd\xed\xb8\x80", "\"" FFFD FFFD FFFD FFFD FFFD FFFD "\"");
}

Test(json, utf8_beyond_max)
{
	EXPECT_STRING("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""); /* U+110000 */
	EXPECT_STRING("\xf5\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
	EXPECT_STRING("\xf7\xbf\xbf\xbf", "\"" FFFD FFFD FFFD FFFD "\"");
	EXPECT_STRING("\xf8\x88\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD FFFD "\"");
	EXPECT_STRING("\xfe\xff", "\"" FFFD FFFD "\"");
}

Test(json, utf8_truncated)
{
	EXPECT_STRING("a\xc3", "\"a" FFFD "\"");
	EXPECT_STRING("\xe2\x82", "\"" FFFD "\"");
	EXPECT_STRING("\xe2", "\"" FFFD "\"");
	EXPECT_STRING("\xf0\x9f\x98", "\"" FFFD "\"");
	EXPECT_STRING("\xf0\x9f", "\"" FFFD "\"");
	/* cut short by something that is not a continuation byte */
	EXPECT_STRING("\xe2\x82z", "\"" FFFD "z\"");
	EXPECT_STRING("\xc3\"", "\"" FFFD "\\\"\"");
	EXPECT_STRING("\xe2\x82\n", "\"" FFFD "\\n\"");
	EXPECT_STRING("\xf0\x9f\x98\xf0\x9f\x98\x80", "\"" FFFD "\xf0\x9f\x98\x80\"");
	/* the length given wins over the bytes that follow */
	expect_string("\xc3\xa9", 1, "\"" FFFD "\"");
	expect_string("\xf0\x9f\x98\x80", 3, "\"" FFFD "\"");
}

Test(json, embedded_nul)
{
	expect_string("a\0b", 3, "\"a\\u0000b\"");
	expect_string("\0", 1, "\"\\u0000\"");
	expect_string("\0\0", 2, "\"\\u0000\\u0000\"");
	expect_string("abcdef", 3, "\"abc\"");
	expect_string("", 0, "\"\"");
}

Test(json, null_strings)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__begin_object(s.w);
	jw__kv_string(s.w, "a", NULL);
	jw__key(s.w, "b");
	jw__string(s.w, NULL);
	jw__key(s.w, "c");
	jw__string_len(s.w, NULL, 5);
	jw__kv_string(s.w, "d", "");
	jw__end_object(s.w);
	sink_expect(&s, "{\"a\":null,\"b\":null,\"c\":null,\"d\":\"\"}");
}

Test(json, keys_escaped)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__begin_object(s.w);
	jw__kv_u64(s.w, "a\"\n\\\x01\xff", 1);
	jw__kv_u64(s.w, "", 2);
	jw__kv_u64(s.w, "\xc3\xa9", 3);
	jw__end_object(s.w);
	sink_expect(&s, "{\"a\\\"\\n\\\\\\u0001" FFFD "\":1,\"\":2,\"\xc3\xa9\":3}");
}

Test(json, pretty_document)
{
	struct sink s = {0};

	sink_open(&s, true);
	jw__begin_object(s.w);
	jw__kv_string(s.w, "name", "web\t1");
	jw__kv_u64(s.w, "pid", 42);
	jw__key(s.w, "cpu");
	jw__begin_object(s.w);
	jw__kv_u64(s.w, "usage_ns", 123);
	jw__key(s.w, "ratio");
	jw__double(s.w, 0.5);
	jw__end_object(s.w);
	jw__key(s.w, "tags");
	jw__begin_array(s.w);
	jw__string(s.w, "a");
	jw__begin_array(s.w);
	jw__i64(s.w, -1);
	jw__end_array(s.w);
	jw__end_array(s.w);
	jw__key(s.w, "empty");
	jw__begin_object(s.w);
	jw__end_object(s.w);
	jw__key(s.w, "none");
	jw__begin_array(s.w);
	jw__end_array(s.w);
	jw__kv_null(s.w, "x");
	jw__end_object(s.w);
	sink_expect(&s, "{\n"
			"  \"name\": \"web\\t1\",\n"
			"  \"pid\": 42,\n"
			"  \"cpu\": {\n"
			"    \"usage_ns\": 123,\n"
			"    \"ratio\": 0.5\n"
			"  },\n"
			"  \"tags\": [\n"
			"    \"a\",\n"
			"    [\n"
			"      -1\n"
			"    ]\n"
			"  ],\n"
			"  \"empty\": {},\n"
			"  \"none\": [],\n"
			"  \"x\": null\n"
			"}\n");
}

Test(json, top_level_sequence)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__begin_object(s.w);
	jw__kv_u64(s.w, "n", 1);
	jw__end_object(s.w);
	jw__begin_object(s.w);
	jw__kv_u64(s.w, "n", 2);
	jw__end_object(s.w);
	jw__u64(s.w, 3);
	sink_expect(&s, "{\"n\":1}\n{\"n\":2}\n3");

	sink_open(&s, true);
	jw__begin_array(s.w);
	jw__end_array(s.w);
	jw__u64(s.w, 3);
	jw__string(s.w, "x");
	sink_expect(&s, "[]\n3\n\"x\"\n");
}

/* Far beyond the initial stack, so it has to grow (several times). */
Test(json, deep_nesting)
{
	enum { DEPTH = 1000 };
	char want[DEPTH * 6 + 16] = "";
	struct sink s = {0};
	size_t n = 0;

	sink_open(&s, false);
	for (int i = 0; i < DEPTH; i++) {
		jw__begin_object(s.w);
		jw__key(s.w, "a");
		n += (size_t)sprintf(want + n, "{\"a\":");
	}
	jw__begin_array(s.w);
	jw__u64(s.w, 1);
	jw__u64(s.w, 2);
	jw__end_array(s.w);
	n += (size_t)sprintf(want + n, "[1,2]");
	for (int i = 0; i < DEPTH; i++) {
		jw__end_object(s.w);
		want[n++] = '}';
	}
	want[n] = '\0';
	sink_expect(&s, want);
}

Test(json, deep_nesting_pretty)
{
	enum { DEPTH = 40 };
	char want[DEPTH * (2 * DEPTH + 4) * 2 + 64] = "";
	struct sink s = {0};
	size_t n = 0;

	sink_open(&s, true);
	for (int i = 0; i < DEPTH; i++) {
		jw__begin_array(s.w);
		n += (size_t)sprintf(want + n, "%*s[\n", 2 * i, "");
	}
	jw__u64(s.w, 7);
	n += (size_t)sprintf(want + n, "%*s7\n", 2 * DEPTH, "");
	for (int i = DEPTH - 1; i >= 0; i--) {
		jw__end_array(s.w);
		n += (size_t)sprintf(want + n, "%*s]\n", 2 * i, "");
	}
	sink_expect(&s, want);
}

Test(json, misuse_ignored)
{
	struct sink s = {0};

	sink_open(&s, false);
	jw__end_object(s.w);
	jw__end_array(s.w);
	jw__begin_array(s.w);
	jw__end_array(s.w);
	jw__end_array(s.w);
	sink_expect(&s, "[]");
}

Test(json, free_keeps_file_open)
{
	struct sink s = {0};

	jw__free(NULL);
	sink_open(&s, false);
	jw__u64(s.w, 1);
	jw__free(s.w);
	s.w = NULL;
	cr_expect_geq(fputs("x", s.f), 0);
	sink_expect(&s, "1x");
}

/*
 * Strict checker for one JSON string that must span exactly [0, len). Stricter than RFC 8259
 * where the writer promises more: raw 0x7f is refused. Decodes into out (at most len bytes)
 * so callers can compare against the input. Returns the decoded length, or -1 with *why.
 */
static ssize_t check_json_string(const unsigned char *s, size_t len, unsigned char *out,
				 const char **why)
{
	size_t i = 0;
	size_t o = 0;

	*why = NULL;
	if (len < 2 || s[0] != '"') {
		*why = "no opening quote";
		return -1;
	}
	for (i = 1; i < len; i++) {
		unsigned char c = s[i];

		if (c == '"') {
			if (i != len - 1) {
				*why = "bytes after the closing quote";
				return -1;
			}
			return (ssize_t)o;
		}
		if (c < 0x20 || c == 0x7f) {
			*why = "unescaped control character";
			return -1;
		}
		if (c == '\\') {
			uint32_t cp = 0;

			if (++i >= len) {
				*why = "truncated escape";
				return -1;
			}
			switch (s[i]) {
			case '"':
				out[o++] = '"';
				continue;
			case '\\':
				out[o++] = '\\';
				continue;
			case '/':
				out[o++] = '/';
				continue;
			case 'b':
				out[o++] = '\b';
				continue;
			case 'f':
				out[o++] = '\f';
				continue;
			case 'n':
				out[o++] = '\n';
				continue;
			case 'r':
				out[o++] = '\r';
				continue;
			case 't':
				out[o++] = '\t';
				continue;
			case 'u':
				break;
			default:
				*why = "unknown escape";
				return -1;
			}
			if (i + 4 >= len) {
				*why = "truncated \\u escape";
				return -1;
			}
			for (int k = 1; k <= 4; k++) {
				unsigned char h = s[i + k];

				cp <<= 4;
				if (h >= '0' && h <= '9')
					cp |= h - '0';
				else if (h >= 'a' && h <= 'f')
					cp |= h - 'a' + 10;
				else if (h >= 'A' && h <= 'F')
					cp |= h - 'A' + 10;
				else {
					*why = "bad hex digit in \\u escape";
					return -1;
				}
			}
			i += 4;
			/* the writer only ever needs \u00XX; anything else would be a bug */
			if (cp > 0x7f) {
				*why = "\\u escape above U+007F";
				return -1;
			}
			out[o++] = (unsigned char)cp;
			continue;
		}
		if (c >= 0x80) {
			/* decode by bit patterns: a second, independent notion of valid UTF-8 */
			uint32_t cp = 0;
			uint32_t min = 0;
			int more = 0;

			if ((c & 0xe0) == 0xc0) {
				cp = c & 0x1f;
				more = 1;
				min = 0x80;
			} else if ((c & 0xf0) == 0xe0) {
				cp = c & 0x0f;
				more = 2;
				min = 0x800;
			} else if ((c & 0xf8) == 0xf0) {
				cp = c & 0x07;
				more = 3;
				min = 0x10000;
			} else {
				*why = "invalid UTF-8 lead byte";
				return -1;
			}
			if (i + (size_t)more >= len) {
				*why = "truncated UTF-8 sequence";
				return -1;
			}
			out[o++] = c;
			for (int k = 0; k < more; k++) {
				c = s[++i];
				if ((c & 0xc0) != 0x80) {
					*why = "missing UTF-8 continuation byte";
					return -1;
				}
				cp = cp << 6 | (c & 0x3f);
				out[o++] = c;
			}
			if (cp < min) {
				*why = "overlong UTF-8";
				return -1;
			}
			if (cp >= 0xd800 && cp <= 0xdfff) {
				*why = "UTF-8 encoded surrogate";
				return -1;
			}
			if (cp > 0x10ffff) {
				*why = "code point beyond U+10FFFF";
				return -1;
			}
			continue;
		}
		out[o++] = c;
	}
	*why = "no closing quote";
	return -1;
}

static bool is_valid_utf8(const unsigned char *s, size_t len)
{
	/* reuse the checker: wrap the bytes as if they were string content needing no escapes */
	unsigned char *quoted = malloc(len + 2);
	unsigned char *out = malloc(len + 2);
	const char *why = NULL;
	bool ok = true;

	cr_assert(quoted && out);
	quoted[0] = '"';
	for (size_t i = 0; i < len; i++) {
		/* escapable bytes are never part of a multi-byte sequence; stand in for them */
		quoted[i + 1] =
		    (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\') ? 'x' : s[i];
	}
	quoted[len + 1] = '"';
	ok = check_json_string(quoted, len + 2, out, &why) >= 0;
	free(quoted);
	free(out);
	return ok;
}

/* Bytes that sit on the boundaries of the UTF-8 tables, or need escaping. */
static const unsigned char interesting[] = {
    0x00, 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1f, 0x20, '"',	'\\', '/',  0x7e, 0x7f,
    0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed,
    0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfb, 0xfc, 0xfe, 0xff,
};

static size_t put_utf8(unsigned char *p, uint32_t cp)
{
	if (cp < 0x80) {
		p[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (unsigned char)(0xc0 | cp >> 6);
		p[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (unsigned char)(0xe0 | cp >> 12);
		p[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		p[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (unsigned char)(0xf0 | cp >> 18);
	p[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	p[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	p[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Mostly-hostile byte strings: uniformly random bytes alone would almost never form a valid
 * multi-byte sequence, so mix in boundary bytes and real (sometimes cut short) UTF-8. One string
 * in four is valid UTF-8 throughout, so the pass-through path gets its share.
 */
static size_t random_bytes(uint64_t *state, unsigned char *buf, size_t max)
{
	bool valid_only = rng_next(state) % 4 == 0;
	size_t len = rng_next(state) % (max - 3);
	size_t n = 0;

	while (n < len) {
		uint64_t r = rng_next(state);

		switch (valid_only ? 5 + r % 3 : r % 8) {
		case 0:
		case 1:
		case 2:
			buf[n++] = (unsigned char)(r >> 8);
			break;
		case 3:
		case 4:
			buf[n++] = interesting[(r >> 8) % sizeof(interesting)];
			break;
		case 5:
			buf[n++] = (unsigned char)(0x20 + (r >> 8) % 0x5f);
			break;
		default: {
			/* anywhere up to U+10FFFF, surrogates too: they must be refused */
			static const uint32_t top[] = {0x80, 0x800, 0x10000, 0x110000};
			uint32_t cp = (uint32_t)((r >> 16) % top[(r >> 8) % 4]);
			size_t k = 0;

			if (valid_only && cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			k = put_utf8(buf + n, cp);
			/* sometimes cut it short */
			if (!valid_only && k > 1 && (r >> 40) % 4 == 0)
				k -= 1 + (r >> 44) % (k - 1);
			n += k;
			break;
		}
		}
	}
	return n;
}

Test(json, random_strings_are_valid)
{
	uint64_t seed = test_seed();
	uint64_t state = seed;
	int valid_inputs = 0;

	for (int i = 0; i < 10000; i++) {
		unsigned char in[64] = {0};
		unsigned char *decoded = NULL;
		size_t len = random_bytes(&state, in, sizeof(in));
		size_t out_len = 0;
		char *out = render_string((const char *)in, len, &out_len);
		const char *why = NULL;
		ssize_t dec_len = 0;
		bool ok = true;

		decoded = malloc(out_len + 1);
		cr_assert_not_null(decoded);
		dec_len = check_json_string((const unsigned char *)out, out_len, decoded, &why);
		ok = dec_len >= 0;
		/* nothing valid may be altered */
		if (ok && is_valid_utf8(in, len)) {
			valid_inputs++;
			ok = (size_t)dec_len == len && memcmp(decoded, in, len) == 0;
			why = "valid input not kept as is";
		}
		cr_expect(ok, "seed %#llx (TALLY_TEST_SEED to repeat), string %d: %s: '%s'",
			  (unsigned long long)seed, i, why, out);
		free(decoded);
		free(out);
		if (!ok)
			break;
	}
	/* the generator must exercise the pass-through path too, not only replacement */
	cr_expect_gt(valid_inputs, 2000, "seed %#llx: only %d valid inputs",
		     (unsigned long long)seed, valid_inputs);
}

static bool have_python3(void)
{
	return system("command -v python3 >/dev/null 2>&1") == 0;
}

/* Pipes everything emit() produces into a python3 program; returns its exit status. */
static int run_python(const char *program, void (*emit)(struct jw *w, void *arg), void *arg,
		      bool pretty)
{
	char cmd[1024] = "";
	struct jw *w = NULL;
	FILE *p = NULL;
	int status = -1;

	/* a parser that gives up early must fail the test, not kill it with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	snprintf(cmd, sizeof(cmd), "python3 -c '%s'", program);
	p = popen(cmd, "w");
	cr_assert_not_null(p, "popen: %m");
	w = jw__new(p, pretty);
	cr_assert_not_null(w, "jw__new: %m");
	emit(w, arg);
	jw__free(w);
	status = pclose(p);
	cr_assert_neq(status, -1, "pclose: %m");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *const hostile[] = {
    "",
    "\"",
    "\\",
    "\"\\\"\\",
    "\x01\x1f\x7f\b\f\n\r\t",
    "</script>",
    "\xc3\xa9\xe2\x82\xac",
    "\xf0\x9f\x98\x80",
    "\x80",
    "\xc0\xaf",
    "\xe0\x80\xaf",
    "\xed\xa0\x80",
    "\xf4\x90\x80\x80",
    "\xff\xfe",
    "a\xc3",
    "\xf0\x9f\x98",
    "\xe2\x82z",
    "\\u0000",
    "\\ud800",
    "\xef\xbb\xbf",
    "\xe2\x80\xa8\xe2\x80\xa9",
};

static void write_hostile(struct jw *w, void *arg)
{
	size_t n = sizeof(hostile) / sizeof(hostile[0]);

	jw__begin_object(w);
	jw__key(w, "strings");
	jw__begin_array(w);
	for (size_t i = 0; i < n; i++)
		jw__string(w, hostile[i]);
	jw__string_len(w, "a\0b\0", 4);
	jw__end_array(w);
	for (size_t i = 0; i < n; i++) {
		/* as keys too, and duplicates are legal JSON */
		jw__key(w, hostile[i]);
		jw__u64(w, i);
	}
	jw__key(w, "numbers");
	jw__begin_array(w);
	jw__u64(w, UINT64_MAX);
	jw__i64(w, INT64_MIN);
	jw__double(w, NAN);
	jw__double(w, -INFINITY);
	jw__double(w, DBL_MAX);
	jw__double(w, -0.0);
	jw__double(w, 5e-324);
	jw__end_array(w);
	jw__key(w, "empty");
	jw__begin_object(w);
	jw__end_object(w);
	jw__end_object(w);
}

Test(json, python_parses_hostile_document)
{
	if (!have_python3())
		cr_skip_test("python3 is not installed");
	static const char program[] = "import json,sys; json.load(sys.stdin)";

	cr_expect_eq(run_python(program, write_hostile, NULL, false), 0);
	cr_expect_eq(run_python(program, write_hostile, NULL, true), 0);
}

static void write_random_pairs(struct jw *w, void *arg)
{
	uint64_t *state = arg;

	jw__begin_array(w);
	for (int i = 0; i < 2000; i++) {
		unsigned char in[64] = {0};
		char hex[2 * sizeof(in) + 1] = "";
		size_t len = random_bytes(state, in, sizeof(in));

		for (size_t k = 0; k < len; k++)
			sprintf(hex + 2 * k, "%02x", in[k]);
		jw__begin_array(w);
		jw__string(w, hex);
		jw__string_len(w, (const char *)in, len);
		jw__end_array(w);
	}
	jw__end_array(w);
}

/*
 * Python's decoder replaces maximal subparts too, so it is an independent oracle for the
 * replacement policy, not only for syntax.
 */
Test(json, python_agrees_on_replacement)
{
	static const char program[] =
	    "import json,sys\n"
	    "bad = [(h, s) for h, s in json.load(sys.stdin)\n"
	    "       if bytes.fromhex(h).decode(\"utf-8\", \"replace\") != s]\n"
	    "if bad: print(bad[:3], file=sys.stderr)\n"
	    "sys.exit(1 if bad else 0)\n";
	uint64_t seed = test_seed();
	uint64_t state = seed;

	if (!have_python3())
		cr_skip_test("python3 is not installed");
	cr_expect_eq(run_python(program, write_random_pairs, &state, false), 0,
		     "seed %#llx (TALLY_TEST_SEED to repeat)", (unsigned long long)seed);
}
