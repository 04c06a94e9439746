// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The disk path's engine: trees, their walks, the fanotify group and the coalesced re-stats.
 *
 * Every directory of a tree is known by its file handle (name_to_handle_at), the same bytes
 * fanotify reports as an event's directory. A table of those handles is the userspace filter
 * (an event whose directory is in no tree costs one hash lookup) and lets a walk reopen any
 * directory with open_by_handle_at(), so a walk holds one directory fd at a time whatever the
 * depth, and never resolves a path (no symlink can lead it out of the tree).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/fanotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "disk.h"
#include "disk_index.h"
#include "util.h"

#define EVENT_MASK                                                                                 \
	(FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_MODIFY | FAN_ATTRIB)
#define DIRENT_MASK	 (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO)
#define FH_MAX		 128 /* MAX_HANDLE_SZ */
#define EVBUF_SIZE	 (256 * 1024)
#define FILEID_INO32_GEN 1 /* include/linux/exportfs.h: (ino32, gen) */

struct fh {
	struct file_handle h;
	unsigned char bytes[FH_MAX];
};

/* A directory of some tree, by handle. */
struct dirent_ref {
	uint64_t hash; /* 0: empty slot */
	uint64_t ino;
	struct disk_tree *tree;
	struct file_handle *fh; /* kept for inode-mark removal */
};

/* A name to re-stat at the next process: (tree, directory, name), coalesced. */
struct pend {
	struct pend *next; /* hash chain, then batch or replay list */
	uint64_t hash;
	struct disk_tree *tree;
	uint64_t dir_ino;
	uint16_t name_len;
	struct file_handle *fh; /* points into data */
	char *name;		/* points into data, NUL-terminated; "." is the directory itself */
	/*
	 * A write or attribute change names its inode (FID) as well as a name: the inode number
	 * read off the handle, and the handle, for when the name no longer leads to it.
	 */
	uint64_t obj_ino;
	struct fh *obj;
	/* filled by the stat pass */
	int state; /* 0 gone, 1 present, -1 unknown (skip) */
	struct stat st;
	struct fh *child; /* handle of a present directory */
	char data[];
};

struct fsmark {
	struct fsmark *next;
	__kernel_fsid_t fsid;
	int refs;
};

struct disk_tree {
	struct disk_tree *next;
	char *path;
	int root_fd;
	dev_t dev;
	uint64_t ino;
	__kernel_fsid_t fsid;
	int refs;
	int err;	     /* the initial scan failed with this */
	bool building;	     /* a walk is running for this tree */
	bool rescan;	     /* an overflow lost events: walk again */
	uint64_t pass;	     /* the disk__process call that last walked it again */
	bool marked;	     /* holds a filesystem mark reference */
	struct dindex *ix;   /* NULL until the initial scan is done */
	struct pend *replay; /* re-stats applied while a walk ran, to apply to its result */
};

struct disk {
	int fan_fd;
	enum disk_mark_mode mode;
	pthread_mutex_t mu;
	pthread_cond_t walked;
	struct disk_tree *trees;
	struct fsmark *fsmarks;
	struct dirent_ref *dirs; /* open addressing, linear probing */
	size_t dirs_cap, dirs_n;
	struct pend **pend; /* chained hash */
	size_t pend_cap, pend_n;
	uint64_t last_ns;
	uint64_t pass; /* disk__process calls */
	struct disk_stats st;
	pthread_t reconciler;
	bool reconciling, stopping;
	pthread_cond_t stop;
	uint64_t period_ns;
	void (*hook)(uint64_t, void *);
	void *hook_ctx;
	char *evbuf;
};

static uint64_t fh_hash(const __kernel_fsid_t *fsid, const struct file_handle *fh)
{
	uint64_t h = hash__bytes(fh->handle_type, fsid, sizeof(*fsid));

	h = hash__bytes(h, fh->f_handle, fh->handle_bytes);
	return h ? h : 1;
}

/* --- the directory table --- */

static struct dirent_ref *dirs_find(struct disk *d, uint64_t hash)
{
	if (!d->dirs_cap)
		return NULL;
	for (size_t i = hash & (d->dirs_cap - 1);; i = (i + 1) & (d->dirs_cap - 1)) {
		if (d->dirs[i].hash == hash)
			return &d->dirs[i];
		if (!d->dirs[i].hash)
			return NULL;
	}
}

static int dirs_put(struct disk *d, struct disk_tree *t, uint64_t hash, uint64_t ino,
		    const struct file_handle *fh);

static int dirs_grow(struct disk *d)
{
	struct dirent_ref *old = d->dirs;
	size_t cap = d->dirs_cap;
	size_t ncap = cap ? cap * 2 : 1024;
	struct dirent_ref *n = calloc(ncap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	d->dirs = n;
	d->dirs_cap = ncap;
	d->dirs_n = 0;
	for (size_t i = 0; i < cap; i++) {
		if (!old[i].hash)
			continue;
		for (size_t j = old[i].hash & (ncap - 1);; j = (j + 1) & (ncap - 1))
			if (!n[j].hash) {
				n[j] = old[i];
				d->dirs_n++;
				break;
			}
	}
	free(old);
	return 0;
}

/* Remove slot i with backward-shift deletion (no tombstones). */
static void dirs_del(struct disk *d, size_t i)
{
	size_t mask = d->dirs_cap - 1;

	free(d->dirs[i].fh);
	d->dirs[i].hash = 0;
	d->dirs_n--;
	for (size_t j = (i + 1) & mask; d->dirs[j].hash; j = (j + 1) & mask) {
		size_t home = d->dirs[j].hash & mask;

		/* j may move to i when its home is not in the cyclic range (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			d->dirs[i] = d->dirs[j];
			d->dirs[j].hash = 0;
			i = j;
		}
	}
}

static int dirs_put(struct disk *d, struct disk_tree *t, uint64_t hash, uint64_t ino,
		    const struct file_handle *fh)
{
	struct dirent_ref *e = dirs_find(d, hash);
	size_t i;

	if (e) {
		e->tree = t;
		e->ino = ino;
		return 0;
	}
	if ((d->dirs_n + 1) * 4 > d->dirs_cap * 3 && dirs_grow(d))
		return -ENOMEM;
	for (i = hash & (d->dirs_cap - 1); d->dirs[i].hash; i = (i + 1) & (d->dirs_cap - 1))
		;
	e = &d->dirs[i];
	e->fh = malloc(sizeof(*fh) + fh->handle_bytes);
	if (!e->fh)
		return -ENOMEM;
	memcpy(e->fh, fh, sizeof(*fh) + fh->handle_bytes);
	e->hash = hash;
	e->ino = ino;
	e->tree = t;
	d->dirs_n++;
	return 0;
}

/*
 * Drop the entries of a tree (all of them, or only those whose directory left its index).
 * Stale entries are harmless until then: an event on them finds no directory in the index.
 */
static void dirs_sweep(struct disk *d, struct disk_tree *t, bool all)
{
	for (size_t i = 0; i < d->dirs_cap;) {
		struct dirent_ref *e = &d->dirs[i];

		if (e->hash && e->tree == t && (all || !t->ix || !dindex__has_dir(t->ix, e->ino))) {
			if (d->mode == DISK_MARK_INODE) {
				int fd = open_by_handle_at(t->root_fd, e->fh, O_PATH);

				if (fd >= 0) {
					fanotify_mark(d->fan_fd, FAN_MARK_REMOVE,
						      EVENT_MASK | FAN_EVENT_ON_CHILD | FAN_ONDIR,
						      fd, NULL);
					close(fd);
				}
			}
			dirs_del(d, i); /* a later entry may have shifted into i */
			continue;
		}
		i++;
	}
}

/*
 * Directories removed from an index leave their entry here; drop them once stale entries
 * outnumber live ones, so churn costs amortised O(1) per directory and the table stays bounded.
 */
static void dirs_gc(struct disk *d)
{
	uint64_t live = 0;

	for (struct disk_tree *t = d->trees; t; t = t->next) {
		struct dindex_totals tot;

		if (!t->ix || t->building)
			return; /* a walk is registering directories: not now */
		dindex__totals(t->ix, &tot);
		live += tot.dirs;
	}
	if (d->dirs_n <= 2 * live + 1024)
		return;
	for (struct disk_tree *t = d->trees; t; t = t->next)
		dirs_sweep(d, t, false);
}

/* --- pending re-stats --- */

static uint64_t pend_hash(const struct disk_tree *t, uint64_t dir_ino, const char *name, size_t len)
{
	return hash__bytes(hash__mix64((uintptr_t)t) ^ dir_ino, name, len);
}

/* The pending item for (t, dir_ino, name), added or found; NULL when out of memory. */
static struct pend *pend_add(struct disk *d, struct disk_tree *t, uint64_t dir_ino,
			     const struct file_handle *fh, const char *name, size_t len)
{
	uint64_t h = pend_hash(t, dir_ino, name, len);
	size_t fhsz = sizeof(*fh) + fh->handle_bytes;
	struct pend *p;

	if (len > NAME_MAX)
		return NULL;
	if (d->pend_n >= d->pend_cap) {
		size_t ncap = d->pend_cap ? d->pend_cap * 2 : 256;
		struct pend **n = calloc(ncap, sizeof(*n));

		if (!n)
			return NULL;
		for (size_t i = 0; i < d->pend_cap; i++)
			while (d->pend[i]) {
				p = d->pend[i];
				d->pend[i] = p->next;
				p->next = n[p->hash & (ncap - 1)];
				n[p->hash & (ncap - 1)] = p;
			}
		free(d->pend);
		d->pend = n;
		d->pend_cap = ncap;
	}
	for (p = d->pend[h & (d->pend_cap - 1)]; p; p = p->next)
		if (p->hash == h && p->tree == t && p->dir_ino == dir_ino && p->name_len == len &&
		    !memcmp(p->name, name, len))
			return p; /* coalesced */
	p = calloc(1, sizeof(*p) + fhsz + len + 1);
	if (!p)
		return NULL;
	p->hash = h;
	p->tree = t;
	p->dir_ino = dir_ino;
	p->name_len = len;
	p->fh = (struct file_handle *)p->data;
	memcpy(p->fh, fh, fhsz);
	p->name = p->data + fhsz;
	memcpy(p->name, name, len);
	p->next = d->pend[h & (d->pend_cap - 1)];
	d->pend[h & (d->pend_cap - 1)] = p;
	d->pend_n++;
	return p;
}

static void pend_free_one(struct pend *p)
{
	free(p->child);
	free(p->obj);
	free(p);
}

static void pend_free(struct pend *p)
{
	while (p) {
		struct pend *n = p->next;

		pend_free_one(p);
		p = n;
	}
}

/* Take the pending items of trees that have an index (others wait for their scan). */
static struct pend *pend_take_ready(struct disk *d)
{
	struct pend *out = NULL;

	for (size_t i = 0; i < d->pend_cap; i++) {
		struct pend **pp = &d->pend[i];

		while (*pp) {
			struct pend *p = *pp;

			if (p->tree && !p->tree->ix) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			p->next = out;
			out = p;
			d->pend_n--;
		}
	}
	if (!d->pend_n && d->pend_cap > 1024) {
		/* After a burst: an empty table need not be walked bucket by bucket every tick. */
		free(d->pend);
		d->pend = NULL;
		d->pend_cap = 0;
	}
	return out;
}

static void pend_drop_tree(struct disk *d, struct disk_tree *t)
{
	for (size_t i = 0; i < d->pend_cap; i++) {
		struct pend **pp = &d->pend[i];

		while (*pp) {
			struct pend *p = *pp;

			if (p->tree != t) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			pend_free_one(p);
			d->pend_n--;
		}
	}
}

/* --- walks --- */

struct walk {
	struct fh *stack;
	size_t n, cap;
};

static int walk_push(struct walk *w, const struct file_handle *fh)
{
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		struct fh *s = realloc(w->stack, nc * sizeof(*s));

		if (!s)
			return -ENOMEM;
		w->stack = s;
		w->cap = nc;
	}
	memcpy(&w->stack[w->n++], fh, sizeof(*fh) + fh->handle_bytes);
	return 0;
}

static int handle_at(int dfd, const char *name, struct fh *out)
{
	int mnt;

	out->h.handle_bytes = FH_MAX;
	if (name_to_handle_at(dfd, name, &out->h, &mnt, name[0] ? 0 : AT_EMPTY_PATH))
		return -errno;
	return 0;
}

static bool same_fsid(const __kernel_fsid_t *a, const __kernel_fsid_t *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* Register a directory of t (handle → tree, ino), marking it in inode-mark mode. */
static int dir_register(struct disk *d, struct disk_tree *t, int dfd, uint64_t ino,
			const struct file_handle *fh, bool locked)
{
	int err = 0;

	if (d->fan_fd < 0)
		return 0; /* a one-off walk: nothing to register */
	if (d->mode == DISK_MARK_INODE &&
	    fanotify_mark(d->fan_fd, FAN_MARK_ADD, EVENT_MASK | FAN_EVENT_ON_CHILD | FAN_ONDIR, dfd,
			  NULL))
		return -errno;
	if (!locked)
		pthread_mutex_lock(&d->mu);
	err = dirs_put(d, t, fh_hash(&t->fsid, fh), ino, fh);
	if (!locked)
		pthread_mutex_unlock(&d->mu);
	return err;
}

/*
 * Read one directory into the index, pushing the handles of directories that are new to it.
 * The directory is registered before its entries are read, so a change made after the read
 * comes back as an event.
 */
static int walk_dir(struct disk *d, struct disk_tree *t, struct dindex *ix, struct walk *w,
		    const struct file_handle *fh, bool locked, char *buf, size_t bufsz)
{
	struct stat dst, st;
	int dfd, err = 0;
	long n;

	dfd = open_by_handle_at(t->root_fd, (struct file_handle *)fh,
				O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOMEM || errno == EMFILE || errno == ENFILE ? -errno : 0;
	if (fstat(dfd, &dst) || dst.st_dev != t->dev || !dindex__has_dir(ix, dst.st_ino))
		goto out; /* gone, replaced, or not (yet) part of the tree */
	dindex__set_blocks(ix, dst.st_ino, dst.st_blocks);
	err = dir_register(d, t, dfd, dst.st_ino, fh, locked);
	if (err)
		goto out;
	if (d->hook)
		d->hook(dst.st_ino, d->hook_ctx);
	while ((n = syscall(SYS_getdents64, dfd, buf, bufsz)) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);
			const char *name = de->d_name;
			bool new_dir;
			struct fh child;

			off += de->d_reclen;
			if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
				continue;
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
				continue; /* vanished since the read: its event follows */
			if (st.st_dev != t->dev)
				continue; /* a mount point: another filesystem, not walked */
			err = dindex__link(ix, dst.st_ino, name, strlen(name), st.st_ino,
					   st.st_blocks, S_ISDIR(st.st_mode), &new_dir);
			if (err)
				goto out;
			if (new_dir) {
				if (handle_at(dfd, name, &child))
					continue; /* vanished: its deletion event follows */
				err = walk_push(w, &child.h);
				if (err)
					goto out;
			}
		}
	}
	if (n < 0 && errno != ENOENT)
		err = -errno;
out:
	close(dfd);
	return err;
}

static int walk_run(struct disk *d, struct disk_tree *t, struct dindex *ix, struct walk *w,
		    bool locked)
{
	size_t bufsz = 64 * 1024;
	char *buf = malloc(bufsz);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	while (w->n && !err) {
		struct fh top;

		w->n--;
		memcpy(&top, &w->stack[w->n], sizeof(top.h) + w->stack[w->n].h.handle_bytes);
		err = walk_dir(d, t, ix, w, &top.h, locked, buf, bufsz);
	}
	free(buf);
	return err;
}

/* Whether the tree's top directory was removed (or can no longer be looked at). */
static bool tree_gone(const struct disk_tree *t)
{
	struct stat st;

	return fstat(t->root_fd, &st) || st.st_nlink == 0;
}

/* A fresh index of the whole tree. */
static int walk_tree(struct disk *d, struct disk_tree *t, bool locked, struct dindex **out)
{
	struct walk w = {0};
	struct dindex *ix = NULL;
	struct stat st;
	struct fh root;
	int err;

	if (fstat(t->root_fd, &st))
		return -errno;
	if (st.st_nlink == 0)
		return -ENOENT;
	err = handle_at(t->root_fd, "", &root);
	if (err)
		return err;
	ix = dindex__new(st.st_ino, st.st_blocks);
	if (!ix)
		return -ENOMEM;
	err = walk_push(&w, &root.h);
	if (!err)
		err = walk_run(d, t, ix, &w, locked);
	free(w.stack);
	if (err) {
		dindex__free(ix);
		return err;
	}
	*out = ix;
	return 0;
}

/* --- applying events --- */

static int cmp_pend(const void *a, const void *b)
{
	const struct pend *x = *(struct pend *const *)a, *y = *(struct pend *const *)b;

	if (x->tree != y->tree)
		return x->tree < y->tree ? -1 : 1;
	return x->dir_ino < y->dir_ino ? -1 : x->dir_ino > y->dir_ino;
}

/* The inode a handle names has a new size (it may be in no index: then nothing changes). */
static void stat_object(struct disk_tree *t, struct dindex *ix, struct file_handle *fh)
{
	int fd = open_by_handle_at(t->root_fd, fh, O_PATH | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return; /* gone: its deletion comes as a name event */
	if (!fstat(fd, &st) && st.st_dev == t->dev)
		dindex__set_blocks(ix, st.st_ino, st.st_blocks);
	close(fd);
}

/* One name of an opened directory (dfd; dir_state as in stat_names). */
static void stat_name(struct disk *d, struct disk_tree *t, struct pend *p, int dfd, int dir_state)
{
	p->state = -1;
	if (!strcmp(p->name, ".") || dir_state < 0)
		return;
	d->st.refreshes++;
	p->state = 0;
	if (dfd < 0)
		return;
	if (fstatat(dfd, p->name, &p->st, AT_SYMLINK_NOFOLLOW)) {
		p->state = errno == ENOENT || errno == ENOTDIR ? 0 : -1;
		return;
	}
	if (p->st.st_dev != t->dev) {
		p->state = 0;
		return;
	}
	p->state = 1;
	if (S_ISDIR(p->st.st_mode)) {
		p->child = malloc(sizeof(*p->child));
		if (!p->child || handle_at(dfd, p->name, p->child))
			p->state = -1;
	}
}

/* Stat pass: one open per directory, one fstatat per name. */
static void stat_names(struct disk *d, struct disk_tree *t, struct dindex *ix, struct pend **v,
		       size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct stat dst;
		int dfd;
		int dir_state;

		if (v[i]->dir_ino == 0) {
			/* Object items: the inode named by the handle has a new size. */
			for (; j < n && v[j]->dir_ino == 0; j++) {
				v[j]->state = -1;
				d->st.refreshes++;
				stat_object(t, ix, v[j]->fh);
			}
			i = j;
			continue;
		}
		/* 1: the directory is open; 0: it is gone, and its names with it; -1: skip. */
		dir_state = dindex__has_dir(ix, v[i]->dir_ino) ? 1 : -1;

		while (j < n && v[j]->dir_ino == v[i]->dir_ino)
			j++;
		dfd = dir_state < 0 ? -1
				    : open_by_handle_at(t->root_fd, v[i]->fh,
							O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dir_state > 0 && dfd < 0)
			dir_state = errno == ESTALE || errno == ENOENT ? 0 : -1;
		if (dfd >= 0 && (fstat(dfd, &dst) || dst.st_ino != v[i]->dir_ino)) {
			close(dfd);
			dfd = -1;
			dir_state = 0;
		}
		if (dfd >= 0)
			dindex__set_blocks(ix, dst.st_ino, dst.st_blocks);
		else if (dir_state < 0 && dindex__has_dir(ix, v[i]->dir_ino))
			t->rescan = true; /* could not look: walk again rather than guess */
		for (size_t k = i; k < j; k++) {
			struct pend *p = v[k];

			stat_name(d, t, p, dfd, dir_state);
			if (p->obj && (p->state != 1 || (uint64_t)p->st.st_ino != p->obj_ino))
				stat_object(t, ix, &p->obj->h);
		}
		if (dfd >= 0)
			close(dfd);
		i = j;
	}
}

/*
 * Apply one tree's re-stats to an index: names that exist first (so a directory renamed to a
 * new name is moved with its subtree before its old name is dropped), then names that are
 * gone, then walks of directories that appeared.
 */
static int apply_names(struct disk *d, struct disk_tree *t, struct dindex *ix, struct pend **v,
		       size_t n)
{
	struct walk w = {0};
	int err = 0;

	size_t applied, deferred;

	stat_names(d, t, ix, v, n);
	/* Until every present name is in, or the ones left only make cycles (-ELOOP). */
	do {
		applied = deferred = 0;
		for (size_t k = 0; k < n && !err; k++) {
			struct pend *p = v[k];
			bool new_dir, is_dir = S_ISDIR(p->st.st_mode);

			if (p->state != 1)
				continue;
			if (is_dir && dindex__has_dir(ix, p->st.st_ino)) {
				struct dirent_ref *e =
				    dirs_find(d, fh_hash(&t->fsid, &p->child->h));

				/* Same inode number, different handle: a new directory reused it.
				 */
				if (!e || e->tree != t || e->ino != (uint64_t)p->st.st_ino)
					dindex__drop_ino(ix, p->st.st_ino);
			}
			err = dindex__link(ix, p->dir_ino, p->name, p->name_len, p->st.st_ino,
					   p->st.st_blocks, is_dir, &new_dir);
			if (err == -ELOOP) {
				err = 0;
				deferred++;
				continue;
			}
			p->state = 2;
			applied++;
			if (err == -ENOENT)
				err = 0; /* its directory is not in the tree (yet): a walk will see
					    it */
			else if (!err && new_dir)
				err = walk_push(&w, &p->child->h);
		}
	} while (!err && deferred && applied);
	if (deferred)
		t->rescan = true; /* names that still disagree: the tree changed again meanwhile */
	for (size_t k = 0; k < n && !err; k++)
		if (v[k]->state == 0)
			err = dindex__unlink(ix, v[k]->dir_ino, v[k]->name, v[k]->name_len);
	if (!err && w.n)
		err = walk_run(d, t, ix, &w, true);
	free(w.stack);
	for (size_t k = 0; k < n; k++) {
		free(v[k]->child);
		v[k]->child = NULL;
	}
	return err;
}

static struct pend **pend_vec(struct pend *list, size_t *n)
{
	struct pend **v;
	size_t c = 0;

	for (struct pend *p = list; p; p = p->next)
		c++;
	v = malloc((c ? c : 1) * sizeof(*v));
	if (!v)
		return NULL;
	c = 0;
	for (struct pend *p = list; p; p = p->next)
		v[c++] = p;
	qsort(v, c, sizeof(*v), cmp_pend);
	*n = c;
	return v;
}

/*
 * Items whose event named no directory, only the inode (an attribute change, a write through a
 * name already gone): re-stat the inode by handle and update every tree that indexes it.
 */
static void apply_orphans(struct disk *d, struct pend **v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct pend *p = v[k];
		__kernel_fsid_t fsid;
		struct disk_tree *t;
		struct stat st;
		int fd = -1;

		memcpy(&fsid, p->name, sizeof(fsid));
		for (t = d->trees; t; t = t->next)
			if (t->ix && same_fsid(&t->fsid, &fsid))
				break;
		if (t)
			fd = open_by_handle_at(t->root_fd, p->fh, O_PATH | O_CLOEXEC);
		if (fd < 0)
			continue;
		d->st.refreshes++;
		if (!fstat(fd, &st))
			for (t = d->trees; t; t = t->next)
				if (t->ix && t->dev == st.st_dev)
					dindex__set_blocks(t->ix, st.st_ino, st.st_blocks);
		close(fd);
	}
}

static int apply_pending(struct disk *d)
{
	struct pend *list = pend_take_ready(d), **v;
	size_t n, i = 0;
	int err = 0;

	if (!list)
		return 0;
	v = pend_vec(list, &n);
	if (!v) {
		pend_free(list);
		return -ENOMEM;
	}
	while (i < n) {
		struct disk_tree *t = v[i]->tree;
		size_t j = i;
		int e;

		while (j < n && v[j]->tree == t)
			j++;
		if (!t) {
			apply_orphans(d, v + i, j - i);
			for (size_t k = i; k < j; k++)
				pend_free_one(v[k]);
			i = j;
			continue;
		}
		e = apply_names(d, t, t->ix, v + i, j - i);
		if (e) {
			t->rescan = true; /* the index may be partial: walk it again */
			/* Anything else is this tree's own, mended by that walk. */
			if (e == -ENOMEM)
				err = err ?: e;
		}
		/* While a walk runs, keep the names for its result. */
		for (size_t k = i; k < j; k++) {
			if (t->building) {
				v[k]->next = t->replay;
				t->replay = v[k];
			} else {
				pend_free_one(v[k]);
			}
		}
		i = j;
	}
	free(v);
	return err;
}

/* --- events --- */

/* Copy a record's handle out (records are packed without alignment). 0 or -EINVAL. */
static int record_handle(const char *rec, size_t len, __kernel_fsid_t *fsid, struct fh *fh,
			 size_t *fhsz)
{
	const char *h = rec + offsetof(struct fanotify_event_info_fid, handle);

	if (h + sizeof(fh->h) > rec + len)
		return -EINVAL;
	memcpy(fsid, rec + offsetof(struct fanotify_event_info_fid, fsid), sizeof(*fsid));
	memcpy(&fh->h, h, sizeof(fh->h));
	*fhsz = sizeof(fh->h) + fh->h.handle_bytes;
	if (fh->h.handle_bytes > FH_MAX || h + *fhsz > rec + len)
		return -EINVAL;
	memcpy(fh, h, *fhsz);
	return 0;
}

/*
 * One directory record of an event: the directory's handle and the name; obj is the event's
 * own FID record (the file itself), or NULL.
 *
 * A write or attribute change is applied to the inode its FID names, not to the name: overlay
 * reports a write through any hard link under the first upper name it found for the inode,
 * even after that name is gone.
 */
static void parse_orphan(struct disk *d, const char *obj, size_t objlen);

static void parse_record(struct disk *d, uint32_t mask, const char *rec, size_t len,
			 const char *obj, size_t objlen)
{
	struct fanotify_event_info_header hdr;
	__kernel_fsid_t fsid;
	struct dirent_ref *e;
	const char *name = ".", *h;
	struct pend *p;
	struct fh fh;
	size_t fhsz;

	memcpy(&hdr, rec, sizeof(hdr));
	if (hdr.info_type != FAN_EVENT_INFO_TYPE_DFID_NAME &&
	    hdr.info_type != FAN_EVENT_INFO_TYPE_DFID &&
	    hdr.info_type != FAN_EVENT_INFO_TYPE_OLD_DFID_NAME &&
	    hdr.info_type != FAN_EVENT_INFO_TYPE_NEW_DFID_NAME)
		return;
	if (record_handle(rec, len, &fsid, &fh, &fhsz))
		return;
	h = rec + offsetof(struct fanotify_event_info_fid, handle);
	e = dirs_find(d, fh_hash(&fsid, &fh.h));
	if (!e && !(mask & DIRENT_MASK) && obj) {
		/* The first name overlay saw may be in a directory already gone: go by inode. */
		parse_orphan(d, obj, objlen);
		return;
	}
	if (!e) {
		d->st.events_ignored++;
		return;
	}
	if (hdr.info_type != FAN_EVENT_INFO_TYPE_DFID && h + fhsz < rec + len && h[fhsz])
		name = h + fhsz; /* NUL-terminated and padded by the kernel */
	if (!(mask & DIRENT_MASK) && obj) {
		struct fh ofh;
		__kernel_fsid_t ofsid;
		uint32_t ino32 = 0;
		size_t osz;

		if (record_handle(obj, objlen, &ofsid, &ofh, &osz))
			return;
		if (ofh.h.handle_type == FILEID_INO32_GEN && ofh.h.handle_bytes == 8)
			memcpy(&ino32, ofh.h.f_handle, sizeof(ino32));
		if (!ino32 || !strcmp(name, ".")) {
			/* No inode number to check the name against: an object item, by handle. */
			if (!pend_add(d, e->tree, 0, &ofh.h, (const char *)&ofh, osz))
				e->tree->rescan = true;
			return;
		}
		/*
		 * Re-stat the name (cheap: batched per directory); the handle is opened only if
		 * the name no longer leads to the inode (overlay's first alias, since unlinked).
		 */
		p = pend_add(d, e->tree, e->ino, &fh.h, name, strnlen(name, rec + len - name));
		if (!p) {
			e->tree->rescan = true;
		} else if (!p->obj) {
			p->obj = malloc(osz);
			if (p->obj) {
				memcpy(p->obj, &ofh, osz);
				p->obj_ino = ino32;
			} else {
				e->tree->rescan = true;
			}
		} else if (p->obj_ino != ino32 &&
			   !pend_add(d, e->tree, 0, &ofh.h, (const char *)&ofh, osz)) {
			e->tree->rescan = true; /* two inodes under one name in a tick */
		}
		return;
	}
	if (!pend_add(d, e->tree, e->ino, &fh.h, name, strnlen(name, rec + len - name)))
		e->tree->rescan = true;
	/* A directory's own blocks change with its entries. */
	if ((mask & DIRENT_MASK) && strcmp(name, ".") &&
	    !pend_add(d, e->tree, e->ino, &fh.h, ".", 1))
		e->tree->rescan = true;
}

/*
 * Can the inode of an orphan event be in t? Handles of type FILEID_INO32_GEN with 8 bytes carry
 * the generic (ino32, gen) layout (ext4, ext2/3, xfs with 32-bit inodes), so the inode number
 * is read off the handle and an event on a file of no tree costs no syscall. Other handles
 * (another layout, a tree still being walked) are kept and opened at the tick.
 */
static bool orphan_may_be_in(const struct disk_tree *t, const struct file_handle *fh)
{
	uint32_t ino;

	if (!t->ix || fh->handle_type != FILEID_INO32_GEN || fh->handle_bytes != 8)
		return true;
	memcpy(&ino, fh->f_handle, sizeof(ino));
	return dindex__has_ino(t->ix, ino);
}

/* An event that names only its inode: kept (coalesced) if it may be in a tree. */
static void parse_orphan(struct disk *d, const char *obj, size_t objlen)
{
	char key[sizeof(__kernel_fsid_t) + sizeof(struct fh)];
	__kernel_fsid_t fsid;
	struct disk_tree *t;
	struct fh fh;
	size_t sz;

	if (record_handle(obj, objlen, &fsid, &fh, &sz))
		return;
	for (t = d->trees; t; t = t->next)
		if (same_fsid(&t->fsid, &fsid) && orphan_may_be_in(t, &fh.h))
			break;
	if (!t) {
		d->st.events_ignored++;
		return;
	}
	memcpy(key, &fsid, sizeof(fsid));
	memcpy(key + sizeof(fsid), &fh, sz);
	if (!pend_add(d, NULL, 0, &fh.h, key, sizeof(fsid) + sz))
		for (t = d->trees; t; t = t->next)
			t->rescan = true;
}

/* The event's own FID record first (the file itself), then its directory records. */
static void parse_event(struct disk *d, const struct fanotify_event_metadata *m, const char *ev)
{

	const char *obj = NULL;
	size_t objlen = 0;
	bool has_dir = false;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t r = m->metadata_len;
		     r + sizeof(struct fanotify_event_info_header) <= m->event_len;) {
			struct fanotify_event_info_header hdr;

			memcpy(&hdr, ev + r, sizeof(hdr));
			if (!hdr.len || r + hdr.len > m->event_len)
				break;
			if (pass == 0 && hdr.info_type == FAN_EVENT_INFO_TYPE_FID) {
				obj = ev + r;
				objlen = hdr.len;
			} else if (pass == 0) {
				has_dir = true;
			} else if (has_dir) {
				parse_record(d, m->mask, ev + r, hdr.len, obj, objlen);
			}
			r += hdr.len;
		}
	}
	if (!has_dir && obj)
		parse_orphan(d, obj, objlen);
}

static int read_events(struct disk *d)
{
	int count = 0;

	for (;;) {
		ssize_t len = read(d->fan_fd, d->evbuf, EVBUF_SIZE);
		struct fanotify_event_metadata m;

		if (len < 0) {
			if (errno == EAGAIN)
				return count;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (ssize_t off = 0; off + (ssize_t)sizeof(m) <= len; off += m.event_len) {
			const char *ev = d->evbuf + off;

			memcpy(&m, ev, sizeof(m));
			if (m.event_len < sizeof(m) || off + m.event_len > len)
				break;
			count++;
			d->st.events++;
			if (m.fd >= 0)
				close(m.fd);
			if (m.mask & FAN_Q_OVERFLOW) {
				d->st.overflows++;
				for (struct disk_tree *t = d->trees; t; t = t->next)
					t->rescan = true;
				continue;
			}
			parse_event(d, &m, ev);
		}
	}
}

/* --- trees --- */

static int fsmark_get(struct disk *d, struct disk_tree *t)
{
	struct fsmark *m;

	if (d->mode != DISK_MARK_FILESYSTEM)
		return 0;
	for (m = d->fsmarks; m; m = m->next)
		if (same_fsid(&m->fsid, &t->fsid)) {
			m->refs++;
			return 0;
		}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (fanotify_mark(d->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, EVENT_MASK | FAN_ONDIR,
			  t->root_fd, NULL)) {
		int err = -errno;

		free(m);
		return err == -EXDEV || err == -ENODEV || err == -EINVAL ? -EOPNOTSUPP : err;
	}
	m->fsid = t->fsid;
	m->refs = 1;
	m->next = d->fsmarks;
	d->fsmarks = m;
	return 0;
}

static void fsmark_put(struct disk *d, struct disk_tree *t)
{
	for (struct fsmark **pm = &d->fsmarks; *pm; pm = &(*pm)->next) {
		struct fsmark *m = *pm;

		if (!same_fsid(&m->fsid, &t->fsid) || --m->refs)
			continue;
		fanotify_mark(d->fan_fd, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM,
			      EVENT_MASK | FAN_ONDIR, t->root_fd, NULL);
		*pm = m->next;
		free(m);
		return;
	}
}

static void tree_free(struct disk *d, struct disk_tree *t)
{
	for (struct disk_tree **pt = &d->trees; *pt; pt = &(*pt)->next)
		if (*pt == t) {
			*pt = t->next;
			break;
		}
	dirs_sweep(d, t, true);
	pend_drop_tree(d, t);
	pend_free(t->replay);
	if (t->marked)
		fsmark_put(d, t);
	dindex__free(t->ix);
	if (t->root_fd >= 0)
		close(t->root_fd);
	free(t->path);
	free(t);
	d->st.trees--;
}

struct disk *disk__new(const struct disk_opts *opts)
{
	struct disk *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->mode = opts ? opts->mark_mode : DISK_MARK_FILESYSTEM;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->walked, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&d->stop, &ca);
		pthread_condattr_destroy(&ca);
	}
	d->evbuf = malloc(EVBUF_SIZE);
	d->fan_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID |
				      FAN_CLOEXEC | FAN_NONBLOCK,
				  O_RDONLY | O_LARGEFILE);
	if (!d->evbuf || d->fan_fd < 0) {
		int err = d->evbuf ? errno : ENOMEM;

		disk__free(d);
		errno = err;
		return NULL;
	}
	return d;
}

void disk__free(struct disk *d)
{
	if (!d)
		return;
	if (d->reconciling) {
		pthread_mutex_lock(&d->mu);
		d->stopping = true;
		pthread_cond_broadcast(&d->stop);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->reconciler, NULL);
	}
	while (d->trees)
		tree_free(d, d->trees);
	if (d->fan_fd >= 0)
		close(d->fan_fd);
	pend_free(pend_take_ready(d)); /* orphans: every tree's items went with it */
	free(d->dirs);
	free(d->pend);
	free(d->evbuf);
	pthread_cond_destroy(&d->walked);
	pthread_cond_destroy(&d->stop);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

int disk__fd(const struct disk *d)
{
	return d->fan_fd;
}

static void tree_put(struct disk *d, struct disk_tree *t)
{
	if (--t->refs == 0)
		tree_free(d, t);
}

/* Wait until no walk runs for t. */
static void wait_walk(struct disk *d, struct disk_tree *t)
{
	while (t->building)
		pthread_cond_wait(&d->walked, &d->mu);
}

struct disk_tree *disk__track(struct disk *d, const char *path)
{
	struct disk_tree *t = NULL;
	struct dindex *ix = NULL;
	struct statfs sfs;
	struct stat st;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || fstatfs(fd, &sfs)) {
		err = -errno;
		goto out_fd;
	}
	pthread_mutex_lock(&d->mu);
	for (t = d->trees; t; t = t->next)
		if (t->dev == st.st_dev && t->ino == st.st_ino && !t->err)
			break;
	if (t) {
		/* Single flight: wait for the scan another caller started. */
		t->refs++;
		wait_walk(d, t);
		err = t->err;
		if (err) {
			tree_put(d, t);
			t = NULL;
		}
		pthread_mutex_unlock(&d->mu);
		goto out_fd;
	}
	t = calloc(1, sizeof(*t));
	if (!t || !(t->path = strdup(path))) {
		free(t);
		t = NULL;
		pthread_mutex_unlock(&d->mu);
		err = -ENOMEM;
		goto out_fd;
	}
	t->root_fd = fd;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	memcpy(&t->fsid, &sfs.f_fsid, sizeof(t->fsid));
	t->refs = 1;
	t->building = true;
	t->next = d->trees;
	d->trees = t;
	d->st.trees++;
	err = fsmark_get(d, t);
	t->marked = !err;
	pthread_mutex_unlock(&d->mu);

	/* The mark is on: whatever changes from here on is reported. */
	if (!err)
		err = walk_tree(d, t, false, &ix);

	pthread_mutex_lock(&d->mu);
	t->building = false;
	if (err) {
		t->err = err;
		pthread_cond_broadcast(&d->walked);
		tree_put(d, t);
		t = NULL;
	} else {
		t->ix = ix;
		d->st.scans++;
		pthread_cond_broadcast(&d->walked);
	}
	pthread_mutex_unlock(&d->mu);
	if (err)
		errno = -err;
	return t;
out_fd:
	close(fd);
	if (err)
		errno = -err;
	return t;
}

void disk__untrack(struct disk *d, struct disk_tree *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&d->mu);
	tree_put(d, t);
	pthread_mutex_unlock(&d->mu);
}

/*
 * Walk t again and swap the result in. Called and returns with the lock held; the walk itself
 * runs unlocked, while events keep being applied to the old index and kept for the new one.
 */
static int rebuild(struct disk *d, struct disk_tree *t, int64_t *dbytes, int64_t *dinodes)
{
	struct dindex_totals before, after;
	struct dindex *ix = NULL;
	struct pend **v;
	size_t n;
	int err;

	t->refs++;
	wait_walk(d, t);
	t->building = true;
	t->rescan = false;
	pthread_mutex_unlock(&d->mu);
	err = walk_tree(d, t, false, &ix);
	pthread_mutex_lock(&d->mu);
	if (!err) {
		/* Bring both to the same moment, then re-stat for the new one what changed. */
		err = read_events(d);
		err = err < 0 ? err : apply_pending(d);
	}
	if (!err && t->replay) {
		v = pend_vec(t->replay, &n);
		err = v ? apply_names(d, t, ix, v, n) : -ENOMEM;
		free(v);
	}
	pend_free(t->replay);
	t->replay = NULL;
	if (!err && t->refs > 1) {
		dindex__totals(t->ix, &before);
		dindex__totals(ix, &after);
		if (dbytes)
			*dbytes = (int64_t)(after.used_bytes - before.used_bytes);
		if (dinodes)
			*dinodes = (int64_t)(after.inodes - before.inodes);
		dindex__free(t->ix);
		t->ix = ix;
		ix = NULL;
		dirs_sweep(d, t, false);
	}
	dindex__free(ix);
	t->building = false;
	/* Walked again next time, unless it is gone: disk__usage says so then. */
	if (err && !tree_gone(t))
		t->rescan = true;
	pthread_cond_broadcast(&d->walked);
	tree_put(d, t);
	return err;
}

int disk__read(struct disk *d)
{
	int n;

	pthread_mutex_lock(&d->mu);
	n = read_events(d);
	pthread_mutex_unlock(&d->mu);
	return n;
}

int disk__process(struct disk *d)
{
	int n, err;

	pthread_mutex_lock(&d->mu);
	n = read_events(d);
	err = n < 0 ? n : apply_pending(d);
	d->pass++;
	for (struct disk_tree *t = d->trees; t && !err;) {
		struct disk_tree *next = t->next;

		/* Once per call: a tree that cannot be walked now is tried again next time. */
		if (t->rescan && t->ix && !t->building && t->pass != d->pass) {
			t->pass = d->pass;
			d->st.rescans++;
			/* The list may change while unlocked: restart from its head. */
			err = rebuild(d, t, NULL, NULL);
			/* A walk that failed is its tree's answer (gone, or walked again). */
			if (err != -ENOMEM)
				err = 0;
			next = d->trees;
		}
		t = next;
	}
	dirs_gc(d);
	d->last_ns = clock__to_realtime_ns(clock__monotonic_ns());
	pthread_mutex_unlock(&d->mu);
	return err ? err : n;
}

int disk__usage(struct disk *d, struct disk_tree *t, struct disk_usage *out)
{
	struct dindex_totals tot;
	int err = 0;

	pthread_mutex_lock(&d->mu);
	if (tree_gone(t)) {
		err = -ENOENT;
	} else {
		dindex__totals(t->ix, &tot);
		out->used_bytes = tot.used_bytes;
		out->inodes_used = tot.inodes;
		out->timestamp_ns =
		    d->last_ns ? d->last_ns : clock__to_realtime_ns(clock__monotonic_ns());
	}
	pthread_mutex_unlock(&d->mu);
	return err;
}

const char *disk__tree_path(const struct disk_tree *t)
{
	return t->path;
}

int disk__reconcile(struct disk *d, struct disk_tree *t, int64_t *drift_bytes,
		    int64_t *drift_inodes)
{
	int64_t db = 0, di = 0;
	int err;

	pthread_mutex_lock(&d->mu);
	err = rebuild(d, t, &db, &di);
	if (!err) {
		d->st.reconciles++;
		if (db || di) {
			d->st.drift_found++;
			d->st.drift_bytes += db;
			d->st.drift_inodes += di;
		}
	}
	pthread_mutex_unlock(&d->mu);
	if (drift_bytes)
		*drift_bytes = db;
	if (drift_inodes)
		*drift_inodes = di;
	return err;
}

static void *reconciler_main(void *arg)
{
	struct disk *d = arg;
	struct timespec next;

	thread__background();
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		struct disk_tree **v;
		size_t n = 0, i = 0;

		next.tv_sec += d->period_ns / NSEC_PER_SEC;
		next.tv_nsec += d->period_ns % NSEC_PER_SEC;
		if (next.tv_nsec >= (long)NSEC_PER_SEC) {
			next.tv_sec++;
			next.tv_nsec -= NSEC_PER_SEC;
		}
		while (!d->stopping && pthread_cond_timedwait(&d->stop, &d->mu, &next) != ETIMEDOUT)
			;
		if (d->stopping)
			break;
		for (struct disk_tree *t = d->trees; t; t = t->next)
			n++;
		v = calloc(n ? n : 1, sizeof(*v));
		for (struct disk_tree *t = d->trees; v && t; t = t->next)
			if (t->ix) {
				t->refs++;
				v[i++] = t;
			}
		pthread_mutex_unlock(&d->mu);
		for (size_t k = 0; k < i; k++) {
			disk__reconcile(d, v[k], NULL, NULL);
			disk__untrack(d, v[k]);
		}
		free(v);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

int disk__start_reconciler(struct disk *d, uint64_t period_ns)
{
	int err;

	if (d->reconciling || !period_ns)
		return -EINVAL;
	d->period_ns = period_ns;
	err = pthread_create(&d->reconciler, NULL, reconciler_main, d);
	if (err)
		return -err;
	d->reconciling = true;
	return 0;
}

void disk__stats(struct disk *d, struct disk_stats *out)
{
	pthread_mutex_lock(&d->mu);
	*out = d->st;
	out->names = out->inodes = 0;
	out->mem_bytes = d->dirs_cap * sizeof(*d->dirs);
	for (size_t i = 0; i < d->dirs_cap; i++)
		if (d->dirs[i].hash)
			out->mem_bytes += sizeof(struct file_handle) + d->dirs[i].fh->handle_bytes;
	for (struct disk_tree *t = d->trees; t; t = t->next) {
		struct dindex_totals tot;

		if (!t->ix)
			continue;
		dindex__totals(t->ix, &tot);
		out->names += tot.names;
		out->inodes += tot.inodes;
		out->mem_bytes += dindex__mem(t->ix);
	}
	pthread_mutex_unlock(&d->mu);
}

void disk__set_scan_hook(struct disk *d, void (*hook)(uint64_t dir_ino, void *ctx), void *ctx)
{
	pthread_mutex_lock(&d->mu);
	d->hook = hook;
	d->hook_ctx = ctx;
	pthread_mutex_unlock(&d->mu);
}

int disk__scan_once(const char *path, struct disk_usage *out)
{
	struct disk d = {.fan_fd = -1, .mode = DISK_MARK_FILESYSTEM};
	struct disk_tree t = {.root_fd = -1};
	struct dindex_totals tot;
	struct dindex *ix = NULL;
	struct statfs sfs;
	struct stat st;
	int err;

	pthread_mutex_init(&d.mu, NULL);
	t.root_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (t.root_fd < 0 || fstat(t.root_fd, &st) || fstatfs(t.root_fd, &sfs)) {
		err = -errno;
		goto out;
	}
	t.dev = st.st_dev;
	memcpy(&t.fsid, &sfs.f_fsid, sizeof(t.fsid));
	err = walk_tree(&d, &t, true, &ix);
	if (err)
		goto out;
	dindex__totals(ix, &tot);
	out->used_bytes = tot.used_bytes;
	out->inodes_used = tot.inodes;
	out->timestamp_ns = clock__to_realtime_ns(clock__monotonic_ns());
out:
	dindex__free(ix);
	free(d.dirs);
	if (t.root_fd >= 0)
		close(t.root_fd);
	pthread_mutex_destroy(&d.mu);
	return err;
}
