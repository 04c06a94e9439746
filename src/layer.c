// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The writable layer: read the root mount of a container's process from its mountinfo and pick
 * the overlay options apart; measure the read-only layers once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discovery.h"
#include "disk.h"
#include "layer.h"
#include "util.h"

/* ---- escapes --------------------------------------------------------------------------- */

static bool is_octal(char c)
{
	return c >= '0' && c <= '7';
}

/*
 * The byte of a "\ooo" escape at s (left bytes available), or -1 when s is not at one. The
 * kernel writes these for space, tab, newline and backslash in paths (mangle()) and also for ','
 * and '=' in option values (seq_show_option()). \000 and values above \377 cannot come from
 * the kernel: such text stays literal, as discovery.c does.
 */
static int octal__at(const char *s, size_t left)
{
	int v;

	if (left < 4 || s[0] != '\\' || !is_octal(s[1]) || !is_octal(s[2]) || !is_octal(s[3]))
		return -1;
	v = (s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0');
	return v > 0 && v <= 0377 ? v : -1;
}

/* Unescape a mountinfo field into a fixed buffer, truncating what does not fit. */
static void field__copy(struct span in, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < in.len && o + 1 < outlen) {
		int v = octal__at(in.s + i, in.len - i);

		if (v > 0) {
			out[o++] = (char)v;
			i += 4;
		} else {
			out[o++] = in.s[i++];
		}
	}
	out[o] = '\0';
}

enum ovl_esc {
	OVL_ESC_NONE,  /* lowerdir+=, datadir+=: the kernel looks the string up as it is */
	OVL_ESC_PATH,  /* upperdir=: overlay strips its own backslash escapes before the lookup */
	OVL_ESC_SPLIT, /* lowerdir=: the same, and unescaped colons separate the layers */
};

/*
 * Decode one overlay path from an option value as mountinfo shows it. Two layers of escaping:
 * seq_show_option() octal-escapes the string the user gave at mount time, and that string
 * carries overlay's own backslash escapes ("\:" for a colon inside a lowerdir path, "\\", "\,"),
 * which the kernel keeps in what it shows and strips (ovl_unescape()) only to look the path up.
 * So octal escapes come off first, then a backslash makes the next byte literal. A colon that
 * was octal-escaped (\072) is part of a path too: only a bare colon separates layers.
 *
 * Returns the path (malloc'd) and sets *used to the raw bytes consumed, the separating colon
 * included; NULL on ENOMEM.
 */
static char *ovl__decode(struct span v, enum ovl_esc esc, size_t *used)
{
	char *out = malloc(v.len + 1); /* decoding never makes a string longer */
	size_t i = 0, o = 0;

	if (!out)
		return NULL;
	while (i < v.len) {
		int oct = octal__at(v.s + i, v.len - i);
		char c = oct > 0 ? (char)oct : v.s[i];

		if (esc == OVL_ESC_SPLIT && oct < 0 && c == ':') {
			i++;
			break;
		}
		i += oct > 0 ? 4 : 1;
		if (esc != OVL_ESC_NONE && c == '\\') {
			/* as ovl_unescape(): a trailing backslash escapes nothing and goes */
			if (i == v.len)
				break;
			oct = octal__at(v.s + i, v.len - i);
			c = oct > 0 ? (char)oct : v.s[i];
			i += oct > 0 ? 4 : 1;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*used = i;
	return out;
}

/* ---- mountinfo ------------------------------------------------------------------------- */

/* The fields of one mountinfo line that the root search needs. */
struct mi_line {
	struct span mnt;
	struct span fstype;
	struct span superopts;
};

static bool span__is_number(struct span sp)
{
	size_t i;

	if (sp.len == 0 || sp.len > 10) /* mount ids are 32-bit in mountinfo */
		return false;
	for (i = 0; i < sp.len; i++)
		if (sp.s[i] < '0' || sp.s[i] > '9')
			return false;
	return true;
}

static bool span__is_majmin(struct span sp)
{
	const char *colon = memchr(sp.s, ':', sp.len);
	struct span maj, min;

	if (!colon)
		return false;
	maj.s = sp.s;
	maj.len = (size_t)(colon - sp.s);
	min.s = colon + 1;
	min.len = sp.len - maj.len - 1;
	return span__is_number(maj) && span__is_number(min);
}

/*
 * ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
 * (proc_pid_mountinfo(5)). Fields are separated by single spaces, as show_mountinfo() writes
 * them: a source can be empty, which shows as two spaces in a row. The optional fields end at
 * the lone "-". Anything after the super options is ignored, for fields a future kernel adds.
 */
static bool mi_line__parse(struct span line, struct mi_line *ml)
{
	struct span f[6];
	size_t pos = 0, field = 0, after = 0;
	bool sep = false;

	memset(ml, 0, sizeof(*ml));
	while (pos <= line.len) {
		struct span cur;

		cur.s = line.s + pos;
		while (pos < line.len && line.s[pos] != ' ')
			pos++;
		cur.len = (size_t)(line.s + pos - cur.s);
		pos++; /* the space, or one past the end */

		if (sep) {
			if (after == 0)
				ml->fstype = cur;
			else if (after == 2)
				ml->superopts = cur;
			if (++after == 3)
				break;
			continue;
		}
		if (field < 6)
			f[field] = cur;
		else if (span__eq(cur, "-"))
			sep = true;
		field++;
	}
	if (after < 3)
		return false;
	if (!span__is_number(f[0]) || !span__is_number(f[1]) || !span__is_majmin(f[2]))
		return false;
	/* mount points outside the reader's root are not shown at all: the rest are absolute */
	if (f[4].len == 0 || f[4].s[0] != '/' || ml->fstype.len == 0)
		return false;
	ml->mnt = f[4];
	return true;
}

static int info__add_lower(struct layer_info *li, char *path)
{
	char **tmp;

	/* one slot at a time: overlay stacks at most 500 layers */
	tmp = realloc(li->lowerdirs, (li->nlower + 1) * sizeof(*li->lowerdirs));
	if (!tmp) {
		free(path);
		return -ENOMEM;
	}
	li->lowerdirs = tmp;
	li->lowerdirs[li->nlower++] = path;
	return 0;
}

/*
 * lowerdir=a:b:c, top first. "::" starts the data-only layers (lowerdir=a:b::d1::d2), which
 * hold file contents for metacopy and are not layers of the tree: they are left out like
 * datadir+=.
 */
static int info__add_lower_list(struct layer_info *li, struct span v)
{
	size_t pos = 0, used;
	int err;

	while (pos < v.len) {
		struct span rest = {v.s + pos, v.len - pos};
		char *path;

		if (rest.s[0] == ':')
			break;
		path = ovl__decode(rest, OVL_ESC_SPLIT, &used);
		if (!path)
			return -ENOMEM;
		pos += used;
		err = info__add_lower(li, path);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Overlay super options: split on bare commas only (commas inside values are octal-escaped).
 * Layers come as one lowerdir= list, or as repeated lowerdir+= when they were given one at a
 * time with fsconfig() ("ovl: add support for appending lowerdirs one by one", 6.8); the
 * kernel refuses to mix the two.
 */
static int info__parse_overlay(struct layer_info *li, struct span opts)
{
	size_t pos = 0;
	int err;

	while (pos < opts.len) {
		const char *end = memchr(opts.s + pos, ',', opts.len - pos);
		struct span opt = {opts.s + pos,
				   end ? (size_t)(end - (opts.s + pos)) : opts.len - pos};
		const char *eq = memchr(opt.s, '=', opt.len);
		struct span key, val;
		size_t used;
		char *path;

		pos += opt.len + 1;
		if (!eq)
			continue; /* flags: rw, default_permissions, volatile, userxattr */
		key.s = opt.s;
		key.len = (size_t)(eq - opt.s);
		val.s = eq + 1;
		val.len = opt.len - key.len - 1;

		if (span__eq(key, "lowerdir")) {
			err = info__add_lower_list(li, val);
			if (err)
				return err;
		} else if (span__eq(key, "lowerdir+")) {
			if (!val.len)
				continue;
			path = ovl__decode(val, OVL_ESC_NONE, &used);
			if (!path)
				return -ENOMEM;
			err = info__add_lower(li, path);
			if (err)
				return err;
		} else if (span__eq(key, "upperdir")) {
			if (!val.len)
				continue;
			path = ovl__decode(val, OVL_ESC_PATH, &used);
			if (!path)
				return -ENOMEM;
			free(li->upperdir);
			li->upperdir = path;
		}
		/* datadir+=, workdir= and the rest say nothing about the layers of the tree */
	}
	return 0;
}

int layer__parse_mountinfo(const char *buf, size_t len, struct layer_info *out)
{
	struct mi_line root = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
	size_t pos = 0, parsed = 0, lines = 0;
	bool found = false;
	int err;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!buf && len)
		return -EINVAL;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		struct span line = {buf + pos, nl ? (size_t)(nl - (buf + pos)) : len - pos};
		struct mi_line ml;

		pos += line.len + 1;
		if (!line.len)
			continue;
		lines++;
		if (!mi_line__parse(line, &ml))
			continue;
		parsed++;
		/* '/' is never escaped: the root's mount point is exactly "/" */
		if (span__eq(ml.mnt, "/")) {
			root = ml;
			found = true;
		}
	}
	if (lines && !parsed)
		return -EINVAL;
	if (!found)
		return -ENOENT;

	field__copy(root.fstype, out->fstype, sizeof(out->fstype));
	if (strcmp(out->fstype, "overlay"))
		return -EMEDIUMTYPE;
	err = info__parse_overlay(out, root.superopts);
	if (err) {
		layer_info__free(out);
		return err;
	}
	return out->upperdir ? 0 : -ENODATA;
}

void layer_info__free(struct layer_info *li)
{
	size_t i;

	if (!li)
		return;
	for (i = 0; i < li->nlower; i++)
		free(li->lowerdirs[i]);
	free(li->lowerdirs);
	free(li->upperdir);
	memset(li, 0, sizeof(*li));
}

/* ---- reading /proc --------------------------------------------------------------------- */

/*
 * A zombie leader whose other threads still run (the main thread called pthread_exit) has no
 * mount namespace left, but its threads do, and they all share one: read a thread's.
 */
static int mountinfo__read_threads(const char *procroot, pid_t pid, char **buf, size_t *len)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir = NULL;
	int n, err = -ESRCH;

	n = snprintf(path, sizeof(path), "%s/%d/task", procroot, (int)pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	dir = opendir(path);
	if (!dir)
		return errno == ENOMEM ? -ENOMEM : -ESRCH;
	while ((de = readdir(dir))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9' || atoi(de->d_name) == (int)pid)
			continue;
		n = snprintf(path, sizeof(path), "%s/%d/task/%s/mountinfo", procroot, (int)pid,
			     de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		err = file__read_all(path, buf, len);
		if (!err || err == -ENOMEM)
			break;
		err = -ESRCH;
	}
	closedir(dir);
	return err;
}

/*
 * The mountinfo of pid, or -ESRCH when the process is gone: /proc/<pid> vanished (ENOENT,
 * ESRCH), or it is a zombie: mounts_open_common() fails with EINVAL for a task whose mount
 * namespace is released, and then its live threads, if any, are asked instead.
 */
static int mountinfo__read(const char *procroot, pid_t pid, char **buf, size_t *len)
{
	char path[PATH_MAX];
	int n, err;

	*buf = NULL;
	*len = 0;
	n = snprintf(path, sizeof(path), "%s/%d/mountinfo", procroot, (int)pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	err = file__read_all(path, buf, len);
	if (err == -EINVAL)
		err = mountinfo__read_threads(procroot, pid, buf, len);
	if (err == -ENOENT || err == -ESRCH)
		err = -ESRCH;
	return err;
}

int layer__read_pid(const char *procroot, pid_t pid, struct layer_info *out)
{
	char *buf = NULL;
	size_t len = 0;
	int err;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!procroot || pid <= 0) {
		err = -EINVAL;
		goto out;
	}
	err = mountinfo__read(procroot, pid, &buf, &len);
	if (err)
		goto out;
	err = layer__parse_mountinfo(buf, len, out);
out:
	out->pid = pid;
	free(buf);
	return err;
}

int layer__find_for_cgroup(const char *procroot, const char *cgdir, struct layer_info *out)
{
	char path[PATH_MAX], *procs = NULL, *mi = NULL;
	size_t plen = 0, mlen = 0, pos = 0;
	int n, err, other = 0;
	pid_t pid;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!procroot || !cgdir)
		return -EINVAL;
	n = snprintf(path, sizeof(path), "%s/cgroup.procs", cgdir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	err = file__read_all(path, &procs, &plen);
	/* a removed cgroup: gone before we looked (ENOENT) or while we read (ENODEV) */
	if (err == -ENOENT || err == -ENODEV)
		return -ESRCH;
	if (err)
		return err;

	err = -ESRCH;
	while ((pid = cgroup_procs__next(procs, plen, &pos)) > 0) {
		err = mountinfo__read(procroot, pid, &mi, &mlen);
		if (err == -ENOMEM)
			goto out;
		if (err) {
			/* gone between the two reads: try the next one */
			if (err != -ESRCH && !other)
				other = err;
			continue;
		}
		err = layer__parse_mountinfo(mi, mlen, out);
		out->pid = pid;
		goto out;
	}
	err = other ? other : -ESRCH;
out:
	free(mi);
	free(procs);
	return err;
}

const char *layer__strerror(int err, const struct layer_info *li, char *buf, size_t len)
{
	bool can_fmt = buf && len;

	switch (err) {
	case 0:
		return "writable layer found";
	case -ENOENT:
		return "no mount at / in mountinfo";
	case -EMEDIUMTYPE:
		if (!li || !li->fstype[0] || !can_fmt)
			return "root filesystem is not overlay";
		snprintf(buf, len, "root filesystem is %s, not overlay", li->fstype);
		return buf;
	case -ENODATA:
		return "root overlay has no upperdir (read-only)";
	case -EINVAL:
		return "mountinfo does not parse";
	case -ESRCH:
		if (!li || li->pid <= 0 || !can_fmt)
			return "no process in the cgroup";
		snprintf(buf, len, "process %d has exited", (int)li->pid);
		return buf;
	default:
		if (!can_fmt)
			return "unexpected error";
		/* GNU strerror_r: returns a static string or buf */
		return strerror_r(err < 0 ? -err : err, buf, len);
	}
}

/* ---- read-only layer cache ------------------------------------------------------------- */

enum lu_state {
	LU_NEW = 0, /* never walked */
	LU_WALKING, /* one caller walks it, unlocked; the others wait on the cond */
	LU_DONE,
	LU_FAILED, /* the last walk failed: not cached, the next caller walks again */
};

/* One read-only layer (a directory), shared by every path that resolves to it. */
struct layer_usage {
	char *canon; /* realpath; also the path of its canonical key */
	enum lu_state state;
	int err;
	struct disk_usage usage;
};

struct layer_key {
	char *path; /* as asked, or the realpath (then == lu->canon) */
	struct layer_usage *lu;
};

struct layer_cache {
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct layer_key *keys; /* sorted by path */
	size_t nkeys, cap;
	size_t walks;
};

struct layer_cache *layer_cache__new(void)
{
	struct layer_cache *c = calloc(1, sizeof(*c));

	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->done, NULL);
	return c;
}

void layer_cache__free(struct layer_cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nkeys; i++) {
		struct layer_key *k = &c->keys[i];

		/* each layer has exactly one key whose path is its canon: that key frees it */
		if (k->path == k->lu->canon) {
			free(k->lu->canon);
			free(k->lu);
		} else {
			free(k->path);
		}
	}
	free(c->keys);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Index of path in c->keys, or where it would go (*found false). Called locked. */
static size_t cache__search(const struct layer_cache *c, const char *path, bool *found)
{
	size_t lo = 0, hi = c->nkeys;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->keys[mid].path, path);

		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* Insert a key that is not there; room for it was made with cache__reserve. Called locked. */
static void cache__insert(struct layer_cache *c, char *path, struct layer_usage *lu)
{
	bool found;
	size_t at = cache__search(c, path, &found);

	memmove(&c->keys[at + 1], &c->keys[at], (c->nkeys - at) * sizeof(c->keys[0]));
	c->keys[at].path = path;
	c->keys[at].lu = lu;
	c->nkeys++;
}

static int cache__reserve(struct layer_cache *c, size_t more)
{
	struct layer_key *tmp;
	size_t cap = c->cap ? c->cap : 16;

	if (c->nkeys + more <= c->cap)
		return 0;
	while (cap < c->nkeys + more)
		cap *= 2;
	tmp = realloc(c->keys, cap * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	c->keys = tmp;
	c->cap = cap;
	return 0;
}

/*
 * The layer of path: known under path, known under its realpath (then path becomes an alias),
 * or new. realpath() runs unlocked, so path is looked up again after it. Called locked.
 */
static int cache__get(struct layer_cache *c, const char *path, struct layer_usage **lu_out)
{
	struct layer_usage *lu = NULL;
	char *canon = NULL, *alias = NULL;
	bool found;
	size_t at;
	int err = 0;

	at = cache__search(c, path, &found);
	if (found) {
		*lu_out = c->keys[at].lu;
		return 0;
	}

	pthread_mutex_unlock(&c->lock);
	canon = realpath(path, NULL);
	err = canon ? 0 : -errno;
	pthread_mutex_lock(&c->lock);
	if (err)
		goto out;

	at = cache__search(c, path, &found);
	if (found) {
		*lu_out = c->keys[at].lu;
		goto out;
	}
	err = cache__reserve(c, 2);
	if (err)
		goto out;
	if (strcmp(path, canon)) {
		alias = strdup(path);
		if (!alias) {
			err = -ENOMEM;
			goto out;
		}
	}
	at = cache__search(c, canon, &found);
	if (found) {
		lu = c->keys[at].lu;
	} else {
		lu = calloc(1, sizeof(*lu));
		if (!lu) {
			err = -ENOMEM;
			goto out;
		}
		lu->canon = canon;
		canon = NULL;
		cache__insert(c, lu->canon, lu);
	}
	if (alias) {
		cache__insert(c, alias, lu);
		alias = NULL;
	}
	*lu_out = lu;
out:
	free(alias);
	free(canon);
	return err;
}

int layer_cache__usage(struct layer_cache *c, const char *path, struct disk_usage *out)
{
	struct layer_usage *lu = NULL;
	struct disk_usage u;
	bool waited = false;
	int err;

	if (!c || !path || !out)
		return -EINVAL;

	pthread_mutex_lock(&c->lock);
	err = cache__get(c, path, &lu);
	if (err)
		goto out;
	while (lu->state == LU_WALKING) {
		pthread_cond_wait(&c->done, &c->lock);
		waited = true;
	}
	if (lu->state == LU_DONE) {
		*out = lu->usage;
		goto out;
	}
	if (lu->state == LU_FAILED && waited) {
		/* the walk this caller waited for failed: report it rather than walk again */
		err = lu->err;
		goto out;
	}

	lu->state = LU_WALKING;
	__atomic_add_fetch(&c->walks, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
	/* lu->canon never changes and lu lives as long as the cache: safe to read unlocked */
	err = disk__scan_once(lu->canon, &u);
	pthread_mutex_lock(&c->lock);
	if (err) {
		lu->state = LU_FAILED;
		lu->err = err;
	} else {
		lu->state = LU_DONE;
		lu->usage = u;
		*out = u;
	}
	pthread_cond_broadcast(&c->done);
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

size_t layer_cache__walks(const struct layer_cache *c)
{
	return c ? __atomic_load_n(&c->walks, __ATOMIC_RELAXED) : 0;
}
