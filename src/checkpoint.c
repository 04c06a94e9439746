// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "util.h"

#define CKPT_HEADER "tally-layers 1\n"

int ckpt__add(struct ckpt *c, uint64_t cgid, const char *upperdir, const struct disk_usage *u)
{
	char *dup;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct ckpt_entry *e = realloc(c->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		c->e = e;
		c->cap = cap;
	}
	dup = strdup(upperdir);
	if (!dup)
		return -ENOMEM;
	c->e[c->n++] = (struct ckpt_entry){.cgid = cgid, .usage = *u, .upperdir = dup};
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct ckpt_entry *x = a, *y = b;

	return x->cgid < y->cgid ? -1 : x->cgid > y->cgid;
}

void ckpt__sort(struct ckpt *c)
{
	if (c->n)
		qsort(c->e, c->n, sizeof(*c->e), entry_cmp);
}

const struct ckpt_entry *ckpt__find(const struct ckpt *c, uint64_t cgid, const char *upperdir)
{
	struct ckpt_entry key = {.cgid = cgid};
	const struct ckpt_entry *e;

	if (!c->n)
		return NULL;
	e = bsearch(&key, c->e, c->n, sizeof(*c->e), entry_cmp);
	return e && !strcmp(e->upperdir, upperdir) ? e : NULL;
}

void ckpt__free(struct ckpt *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->e[i].upperdir);
	free(c->e);
	*c = (struct ckpt){};
}

/* Undo the \ooo escapes of one path, in place. false when an escape is malformed. */
static bool unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (*s != '\\') {
			*out++ = *s;
			continue;
		}
		if (s[1] < '0' || s[1] > '3' || s[2] < '0' || s[2] > '7' || s[3] < '0' || s[3] > '7')
			return false;
		*out = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
		if (!*out++)
			return false; /* no NUL in a path */
		s += 3;
	}
	*out = '\0';
	return true;
}

/* One line (NUL-terminated, no newline) into c. 0, -EINVAL when it does not parse, -ENOMEM. */
static int parse_line(char *line, struct ckpt *c)
{
	unsigned long long id, bytes, inodes, ts;
	struct disk_usage u;
	int end = 0;

	if (sscanf(line, "%llu %llu %llu %llu %n", &id, &bytes, &inodes, &ts, &end) != 4 || !end ||
	    line[end] != '/' || !unescape(line + end))
		return -EINVAL;
	u = (struct disk_usage){.used_bytes = bytes, .inodes_used = inodes, .timestamp_ns = ts};
	return ckpt__add(c, id, line + end, &u);
}

int ckpt__parse(const char *buf, struct ckpt *c, size_t *bad)
{
	size_t n = strlen(CKPT_HEADER);
	const char *p;
	int err = 0;

	*bad = 0;
	if (strncmp(buf, CKPT_HEADER, n))
		return -EINVAL;
	for (p = buf + n; *p && !err;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line;

		/* A line without its newline was cut by a crash mid-write: not trusted. */
		if (!nl) {
			(*bad)++;
			break;
		}
		line = strndup(p, len);
		if (!line)
			return -ENOMEM;
		err = parse_line(line, c);
		free(line);
		if (err == -EINVAL) {
			(*bad)++;
			err = 0;
		}
		p = nl + 1;
	}
	ckpt__sort(c);
	return err;
}

static void write_escaped(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == '\\')
			fprintf(f, "\\%03o", *p);
		else
			fputc(*p, f);
	}
}

int ckpt__write(FILE *f, const struct ckpt *c)
{
	fputs(CKPT_HEADER, f);
	for (size_t i = 0; i < c->n; i++) {
		const struct ckpt_entry *e = &c->e[i];

		fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " ", e->cgid,
			e->usage.used_bytes, e->usage.inodes_used, e->usage.timestamp_ns);
		write_escaped(f, e->upperdir);
		fputc('\n', f);
	}
	return ferror(f) ? -EIO : 0;
}

static int ckpt__path(const char *dir, const char *name, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/%s", dir, name) >= (int)len ? -ENAMETOOLONG : 0;
}

int ckpt__load(const char *dir, struct ckpt *c, size_t *bad)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len;
	int err;

	*bad = 0;
	err = ckpt__path(dir, CHECKPOINT_FILE, path, sizeof(path));
	if (!err)
		err = file__read_all(path, &buf, &len);
	if (err == -ENOENT)
		return 0;
	if (!err)
		err = ckpt__parse(buf, c, bad);
	free(buf);
	return err;
}

int ckpt__save(const char *dir, const struct ckpt *c)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *f = NULL;
	int fd = -1, err;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	err = ckpt__path(dir, CHECKPOINT_FILE, path, sizeof(path));
	if (!err)
		err = ckpt__path(dir, CHECKPOINT_FILE ".tmp", tmp, sizeof(tmp));
	if (err)
		return err;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto out;
	}
	err = ckpt__write(f, c);
	if (!err && fflush(f))
		err = -errno;
	/* On disk before it replaces the old one: a crash leaves one or the other, whole. */
	if (!err && fdatasync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
out:
	if (err)
		unlink(tmp);
	return err;
}

int ckpt__remove(const char *dir)
{
	char path[PATH_MAX];
	int err = ckpt__path(dir, CHECKPOINT_FILE, path, sizeof(path));

	if (err)
		return err;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	/* Anything else in it is not tally's: then the directory stays. */
	if (rmdir(dir) && errno != ENOENT && errno != ENOTEMPTY)
		return -errno;
	return 0;
}
