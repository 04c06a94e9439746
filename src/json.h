/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one JSON writer: streaming, compact or pretty, always valid output. Strings are written
 * as UTF-8 with '"', '\\' and every control character escaped; bytes that are not valid UTF-8
 * (cgroup and file names can hold any byte) become U+FFFD, so the document always parses.
 */
#ifndef __TALLY_JSON_H
#define __TALLY_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct jw;

struct jw *jw__new(FILE *out, bool pretty); /* NULL and errno on failure */
void jw__free(struct jw *w);		    /* accepts NULL; does not close out */

void jw__begin_object(struct jw *w);
void jw__end_object(struct jw *w);
void jw__begin_array(struct jw *w);
void jw__end_array(struct jw *w);
void jw__key(struct jw *w, const char *name); /* inside an object, before each value */

void jw__string(struct jw *w, const char *s); /* NULL writes null */
void jw__string_len(struct jw *w, const char *s, size_t len);
void jw__u64(struct jw *w, uint64_t v);
void jw__i64(struct jw *w, int64_t v);
void jw__double(struct jw *w, double v); /* non-finite values write null */
void jw__bool(struct jw *w, bool v);
void jw__null(struct jw *w);

/* key + value in one call */
void jw__kv_string(struct jw *w, const char *key, const char *s);
void jw__kv_u64(struct jw *w, const char *key, uint64_t v);
void jw__kv_null(struct jw *w, const char *key);

#endif /* __TALLY_JSON_H */
