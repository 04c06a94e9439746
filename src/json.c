// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Streaming JSON writer. Output decisions that callers can rely on:
 *
 * - Compact mode writes no whitespace at all. Several top-level values written with one writer
 *   are separated by '\n' (JSON lines), since back to back they would not parse.
 * - Pretty mode indents by 2 spaces per level, writes "key": value, keeps empty containers on
 *   one line ("{}", "[]") and ends every top-level value with '\n'.
 * - Strings: '"', '\\', \b \f \n \r \t get their short escapes, every other byte below 0x20 and
 *   0x7f become \u00XX (lowercase hex). Well-formed UTF-8 passes through unchanged. Anything
 *   else becomes U+FFFD once per *maximal subpart* (Unicode 15, section 3.9, "U+FFFD
 *   Substitution of Maximal Subparts", also what Python's and WHATWG's decoders do): a valid
 *   lead byte followed by a valid but truncated tail is one U+FFFD; a byte that cannot start a
 *   sequence (80..C1, F5..FF), or a lead whose next byte is out of range (E0 80, ED A0, F0 80,
 *   F4 90: overlongs, surrogates, > U+10FFFF), gives one U+FFFD for the lead alone and the
 *   following bytes are looked at afresh.
 * - Doubles use the shortest of %.15g, %.16g and %.17g that reads back to the same value, so
 *   0.1 prints as 0.1 and nothing is lost; NaN and infinities are null.
 * - Misuse (end without begin) is ignored rather than underflowing. If the nesting stack cannot
 *   grow, the writer stops writing altogether: a truncated document fails to parse, which is
 *   better than one that parses with the wrong structure.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* Deep enough for everything tally writes; deeper documents grow the stack on the heap. */
#define JW_INITIAL_DEPTH 16

struct jw {
	FILE *out;
	bool pretty;
	bool after_key; /* the next value completes a "key": pair, so no separator before it */
	bool failed;	/* the stack could not grow: write nothing more */
	size_t depth;	/* 0 is the top level */
	size_t cap;
	bool *first; /* first[d]: nothing written yet at depth d */
};

struct jw *jw__new(FILE *out, bool pretty)
{
	struct jw *w = calloc(1, sizeof(*w));

	if (!w) {
		errno = ENOMEM;
		return NULL;
	}
	w->first = calloc(JW_INITIAL_DEPTH, sizeof(*w->first));
	if (!w->first) {
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	w->out = out;
	w->pretty = pretty;
	w->cap = JW_INITIAL_DEPTH;
	w->first[0] = true;
	return w;
}

void jw__free(struct jw *w)
{
	if (!w)
		return;
	free(w->first);
	free(w);
}

static void jw_indent(struct jw *w, size_t depth)
{
	putc('\n', w->out);
	for (size_t i = 0; i < depth; i++)
		fputs("  ", w->out);
}

/* Comma and line break before an element; the top level separates documents by '\n'. */
static void jw_separate(struct jw *w)
{
	bool first = w->first[w->depth];

	w->first[w->depth] = false;
	if (w->depth == 0) {
		/* pretty mode already ended the previous document with '\n' */
		if (!first && !w->pretty)
			putc('\n', w->out);
		return;
	}
	if (!first)
		putc(',', w->out);
	if (w->pretty)
		jw_indent(w, w->depth);
}

/* Before every value: a value right after its key takes no separator of its own. */
static void jw_value_begin(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	jw_separate(w);
}

static void jw_value_end(struct jw *w)
{
	if (w->depth == 0 && w->pretty)
		putc('\n', w->out);
}

static void jw_push(struct jw *w, char open)
{
	if (w->failed)
		return;
	if (w->depth + 1 >= w->cap) {
		size_t cap = w->cap * 2;
		bool *grown = NULL;

		if (cap > w->cap && cap <= SIZE_MAX / sizeof(*grown))
			grown = realloc(w->first, cap * sizeof(*grown));
		if (!grown) {
			w->failed = true;
			errno = ENOMEM;
			return;
		}
		w->first = grown;
		w->cap = cap;
	}
	jw_value_begin(w);
	putc(open, w->out);
	w->depth++;
	w->first[w->depth] = true;
}

static void jw_pop(struct jw *w, char close)
{
	if (w->failed || w->depth == 0)
		return;
	/* a key with no value is the caller's bug; forget it so the next element is separated */
	w->after_key = false;
	if (w->pretty && !w->first[w->depth])
		jw_indent(w, w->depth - 1);
	putc(close, w->out);
	w->depth--;
	jw_value_end(w);
}

void jw__begin_object(struct jw *w)
{
	jw_push(w, '{');
}

void jw__end_object(struct jw *w)
{
	jw_pop(w, '}');
}

void jw__begin_array(struct jw *w)
{
	jw_push(w, '[');
}

void jw__end_array(struct jw *w)
{
	jw_pop(w, ']');
}

/* JSON's escapes: '"', '\\' and the control characters (DEL too), else NULL: verbatim. */
static const char *json_escape(unsigned char c, char buf[UTF8_ESC_MAX])
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	}
	if (c >= 0x20 && c < 0x7f)
		return NULL;
	snprintf(buf, UTF8_ESC_MAX, "\\u00%c%c", hex[c >> 4], hex[c & 0xf]);
	return buf;
}

static void jw_put_string(struct jw *w, const char *str, size_t len)
{
	putc('"', w->out);
	utf8__write_escaped(w->out, str, len, json_escape);
	putc('"', w->out);
}

void jw__key(struct jw *w, const char *name)
{
	if (w->failed)
		return;
	jw_separate(w);
	/* a NULL key is a caller bug; "" keeps the document valid */
	jw_put_string(w, name ? name : "", name ? strlen(name) : 0);
	putc(':', w->out);
	if (w->pretty)
		putc(' ', w->out);
	w->after_key = true;
}

void jw__string_len(struct jw *w, const char *s, size_t len)
{
	if (w->failed)
		return;
	if (!s) {
		jw__null(w);
		return;
	}
	jw_value_begin(w);
	jw_put_string(w, s, len);
	jw_value_end(w);
}

void jw__string(struct jw *w, const char *s)
{
	jw__string_len(w, s, s ? strlen(s) : 0);
}

void jw__u64(struct jw *w, uint64_t v)
{
	if (w->failed)
		return;
	jw_value_begin(w);
	fprintf(w->out, "%" PRIu64, v);
	jw_value_end(w);
}

void jw__i64(struct jw *w, int64_t v)
{
	if (w->failed)
		return;
	jw_value_begin(w);
	fprintf(w->out, "%" PRId64, v);
	jw_value_end(w);
}

void jw__double(struct jw *w, double v)
{
	char buf[32] = "";

	if (w->failed)
		return;
	if (!isfinite(v)) {
		jw__null(w);
		return;
	}
	/* %.17g always reads back exactly; fewer digits, when enough, keep 0.1 from 0.100...01 */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	jw_value_begin(w);
	/*
	 * Under a locale with a decimal comma (or a multi-byte separator) %g is not JSON: write
	 * whatever separator it used as one '.', as nothing else %g writes is locale dependent.
	 */
	for (const char *p = buf; *p; p++) {
		if (strchr("0123456789+-eE", *p))
			putc(*p, w->out);
		else if (p == buf || strchr("0123456789+-eE", p[-1]))
			putc('.', w->out);
	}
	jw_value_end(w);
}

void jw__bool(struct jw *w, bool v)
{
	if (w->failed)
		return;
	jw_value_begin(w);
	fputs(v ? "true" : "false", w->out);
	jw_value_end(w);
}

void jw__null(struct jw *w)
{
	if (w->failed)
		return;
	jw_value_begin(w);
	fputs("null", w->out);
	jw_value_end(w);
}

void jw__kv_string(struct jw *w, const char *key, const char *s)
{
	jw__key(w, key);
	jw__string(w, s);
}

void jw__kv_u64(struct jw *w, const char *key, uint64_t v)
{
	jw__key(w, key);
	jw__u64(w, v);
}

void jw__kv_null(struct jw *w, const char *key)
{
	jw__key(w, key);
	jw__null(w);
}
