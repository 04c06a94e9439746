// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Discovery: find the cgroup2 mount, walk its tree and tell containers and pods apart by the
 * names runtimes and kubelet give to their cgroups.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discovery.h"
#include "util.h"

/* ---- mountinfo ------------------------------------------------------------------------- */

static bool span__starts(struct span sp, const char *prefix)
{
	size_t n = strlen(prefix);

	return sp.len >= n && memcmp(sp.s, prefix, n) == 0;
}

static bool span__ends(struct span sp, const char *suffix)
{
	size_t n = strlen(suffix);

	return sp.len >= n && memcmp(sp.s + sp.len - n, suffix, n) == 0;
}

static bool is_octal(char c)
{
	return c >= '0' && c <= '7';
}

/* The kernel's show_path()/mangle() escapes space, tab, newline and backslash as \ooo. */
static int mountinfo__unescape(struct span in, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < in.len) {
		char c = in.s[i];

		if (c == '\\' && i + 3 < in.len && is_octal(in.s[i + 1]) && is_octal(in.s[i + 2]) &&
		    is_octal(in.s[i + 3])) {
			int v = (in.s[i + 1] - '0') * 64 + (in.s[i + 2] - '0') * 8 +
				(in.s[i + 3] - '0');

			/* \000 or > \377 cannot come from the kernel: keep such text literally */
			if (v > 0 && v <= 0377) {
				c = (char)v;
				i += 3;
			}
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = c;
		i++;
	}
	if (o >= outlen)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return 0;
}

/*
 * Split one mountinfo line into root, mount point and fstype. The optional fields make the
 * position of fstype variable: it follows the lone "-", which can only come after field 5.
 */
static bool mountinfo__parse_line(struct span line, struct span *root, struct span *mnt,
				  struct span *fstype)
{
	size_t pos = 0, field = 0;
	bool sep = false;

	while (pos < line.len) {
		struct span f;

		f.s = line.s + pos;
		while (pos < line.len && line.s[pos] != ' ')
			pos++;
		f.len = (size_t)(line.s + pos - f.s);
		pos++; /* the space, or one past the end */

		if (sep) {
			*fstype = f;
			return true;
		}
		if (field == 3)
			*root = f;
		else if (field == 4)
			*mnt = f;
		else if (field >= 6 && span__eq(f, "-"))
			sep = true;
		field++;
	}
	return false;
}

/*
 * How much of the hierarchy a cgroup2 mount shows, from its root as mountinfo gives it
 * (relative to the reader's cgroup namespace root): 0 a subtree ("/a/b": a container without a
 * namespace of its own), 1 the namespace's root ("/"), 2 and more its ancestors ("/..",
 * "/../.."): the host's tree, mounted into a container that has a cgroup namespace of its own,
 * which is what a node agent in a pod must count.
 */
static int root__rank(struct span root)
{
	int rank = 1;
	size_t i = 0;

	if (span__eq(root, "/"))
		return 1;
	while (i + 3 <= root.len && !memcmp(root.s + i, "/..", 3) &&
	       (i + 3 == root.len || root.s[i + 3] == '/')) {
		rank++;
		i += 3;
	}
	return i == root.len ? rank : 0;
}

int cgroup2__find_mount(const char *mountinfo, char *out, size_t outlen)
{
	struct span best = {NULL, 0};
	int best_rank = -1;
	const char *p = mountinfo;

	if (!mountinfo || !out)
		return -EINVAL;

	while (*p) {
		const char *nl = strchr(p, '\n');
		struct span line = {p, nl ? (size_t)(nl - p) : strlen(p)};
		struct span root = {NULL, 0}, mnt = {NULL, 0}, fstype = {NULL, 0};
		int rank;

		p = nl ? nl + 1 : p + line.len;
		if (!mountinfo__parse_line(line, &root, &mnt, &fstype) ||
		    !span__eq(fstype, "cgroup2"))
			continue;
		if (!mnt.len)
			continue;
		/* The widest view wins; the first of equals. */
		rank = root__rank(root);
		if (rank > best_rank) {
			best = mnt;
			best_rank = rank;
		}
	}
	if (best_rank < 0)
		return -ENOENT;
	return mountinfo__unescape(best, out, outlen);
}

int cgroup2__find_mount_file(const char *path, char *out, size_t outlen)
{
	char *buf = NULL;
	size_t len;
	int err;

	err = file__read_all(path, &buf, &len);
	/* a NUL inside the file ends the text there, which is what a C parser would see anyway */
	if (!err)
		err = cgroup2__find_mount(buf, out, outlen);
	free(buf);
	return err;
}

/* ---- classification -------------------------------------------------------------------- */

const char *runtime__name(enum runtime rt)
{
	switch (rt) {
	case RUNTIME_DOCKER:
		return "docker";
	case RUNTIME_CONTAINERD:
		return "containerd";
	case RUNTIME_CRIO:
		return "cri-o";
	case RUNTIME_PODMAN:
		return "podman";
	case RUNTIME_KUBEPODS:
		return "kubernetes";
	case RUNTIME_NONE:
	default:
		return NULL;
	}
}

#define HEX_ID_LEN 64
/* the last components of a path that the rules look at: name, parent, grandparent, ... */
#define TAIL_MAX 4

static bool span__is_hex_id(struct span sp)
{
	size_t i;

	if (sp.len != HEX_ID_LEN)
		return false;
	for (i = 0; i < sp.len; i++) {
		char c = sp.s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

static const struct {
	const char *prefix;
	enum runtime rt;
} scope_prefixes[] = {
    {"docker-", RUNTIME_DOCKER},
    {"cri-containerd-", RUNTIME_CONTAINERD},
    {"crio-", RUNTIME_CRIO},
    {"libpod-", RUNTIME_PODMAN},
};

/*
 * "<prefix><64 hex>.scope" as runtimes name their cgroups with the systemd driver. Without the
 * ".scope" suffix (allow_bare) it is the cgroupfs form cri-o and podman use. "crio-conmon-<id>"
 * and "libpod-conmon-<id>" hold the monitor process, not the container: the strict hex check
 * turns them down.
 */
static enum runtime scope__match(struct span name, bool allow_bare, struct span *id)
{
	size_t i;

	for (i = 0; i < sizeof(scope_prefixes) / sizeof(scope_prefixes[0]); i++) {
		size_t plen = strlen(scope_prefixes[i].prefix);
		struct span mid;

		if (!span__starts(name, scope_prefixes[i].prefix))
			continue;
		mid.s = name.s + plen;
		mid.len = name.len - plen;
		if (span__ends(mid, ".scope"))
			mid.len -= strlen(".scope");
		else if (!allow_bare)
			continue;
		if (span__is_hex_id(mid)) {
			*id = mid;
			return scope_prefixes[i].rt;
		}
	}
	return RUNTIME_NONE;
}

static bool span__has_runtime_prefix(struct span name)
{
	size_t i;

	for (i = 0; i < sizeof(scope_prefixes) / sizeof(scope_prefixes[0]); i++)
		if (span__starts(name, scope_prefixes[i].prefix))
			return true;
	return false;
}

static bool uid__valid_char(char c, char dash)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == dash;
}

/*
 * Pod uids are UUIDs, or 32 hex digits for static pods (a hash of the manifest): accept hex and
 * dashes up to the UUID length. The systemd driver escapes '-' as '_' in slice names.
 */
static bool uid__copy(struct span sp, char dash, char *out)
{
	size_t i;

	if (sp.len == 0 || sp.len >= CG_UID_MAX)
		return false;
	for (i = 0; i < sp.len; i++)
		if (!uid__valid_char(sp.s[i], dash))
			return false;
	for (i = 0; i < sp.len; i++)
		out[i] = sp.s[i] == dash ? '-' : sp.s[i];
	out[sp.len] = '\0';
	return true;
}

/* the QoS slice prefixes kubelet creates, with an optional "<x>-" for a custom cgroup root */
static bool slice__is_kubepods(struct span q)
{
	static const char *const names[] = {"kubepods", "kubepods-burstable",
					    "kubepods-besteffort"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);

		if (!span__ends(q, names[i]))
			continue;
		if (q.len == n || q.s[q.len - n - 1] == '-')
			return true;
	}
	return false;
}

enum pod_driver {
	POD_NONE = 0,
	POD_SYSTEMD,
	POD_CGROUPFS,
};

/*
 * Is tail[i] a pod cgroup? tail[0] is the last component, tail[1] its parent...; ntail says how
 * many are valid. Fills uid (CG_UID_MAX bytes) on success.
 */
static enum pod_driver pod__match(const struct span *tail, size_t ntail, size_t i, char *uid)
{
	struct span name, parent, base, q, u;
	const char *dash = NULL;
	size_t k;

	if (i + 1 >= ntail) /* a pod always has a parent (the QoS slice or dir) */
		return POD_NONE;
	name = tail[i];
	parent = tail[i + 1];

	/* systemd: <q>-pod<uid>.slice inside <q>.slice, as systemd nests slices by their dashes */
	if (span__ends(name, ".slice")) {
		base.s = name.s;
		base.len = name.len - strlen(".slice");
		for (k = base.len; k > 0; k--) {
			if (base.s[k - 1] == '-') {
				dash = base.s + k - 1;
				break;
			}
		}
		if (!dash)
			return POD_NONE;
		q.s = base.s;
		q.len = (size_t)(dash - base.s);
		u.s = dash + 1;
		u.len = base.len - q.len - 1;
		if (!span__starts(u, "pod") || !slice__is_kubepods(q))
			return POD_NONE;
		if (parent.len != q.len + strlen(".slice") || memcmp(parent.s, q.s, q.len) != 0 ||
		    !span__ends(parent, ".slice"))
			return POD_NONE;
		u.s += 3;
		u.len -= 3;
		return uid__copy(u, '_', uid) ? POD_SYSTEMD : POD_NONE;
	}

	/* cgroupfs: kubepods/pod<uid>, kubepods/{burstable,besteffort}/pod<uid> */
	if (!span__starts(name, "pod"))
		return POD_NONE;
	if (!span__eq(parent, "kubepods")) {
		if (!span__eq(parent, "burstable") && !span__eq(parent, "besteffort"))
			return POD_NONE;
		if (i + 2 >= ntail || !span__eq(tail[i + 2], "kubepods"))
			return POD_NONE;
	}
	u.s = name.s + 3;
	u.len = name.len - 3;
	return uid__copy(u, '-', uid) ? POD_CGROUPFS : POD_NONE;
}

/* fill tail[] with the last components (tail[0] = last); returns the number of components */
static size_t path__tail(const char *path, size_t plen, struct span *tail, size_t *ntail)
{
	size_t n = 0, end = plen;

	*ntail = 0;
	if (plen <= 1) /* "/" */
		return 0;
	/* components sit between the slashes after the leading one; empty ones are kept */
	for (;;) {
		size_t start = end;

		while (start > 1 && path[start - 1] != '/')
			start--;
		if (*ntail < TAIL_MAX) {
			tail[*ntail].s = path + start;
			tail[*ntail].len = end - start;
			(*ntail)++;
		}
		n++;
		if (start <= 1)
			break;
		end = start - 1;
	}
	return n;
}

static bool path__has_component(const char *path, size_t plen, const char *name)
{
	size_t n = strlen(name), i = 0;

	while (i < plen) {
		size_t j = i;

		while (j < plen && path[j] != '/')
			j++;
		if (j - i == n && memcmp(path + i, name, n) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

static int ident__set_container(struct cg_ident *out, enum runtime rt, struct span id,
				const char *pod_uid)
{
	if (id.len == 0 || id.len >= CG_ID_MAX)
		return 0; /* stays CG_OTHER */
	out->kind = CG_CONTAINER;
	out->runtime = rt;
	memcpy(out->id, id.s, id.len);
	out->id[id.len] = '\0';
	if (pod_uid)
		strcpy(out->pod_uid, pod_uid);
	return 0;
}

/* the containerd namespaces whose containers land at /<namespace>/<id> with runc's cgroupfs */
static bool span__is_containerd_ns(struct span sp)
{
	return span__eq(sp, "default") || span__eq(sp, "k8s.io") || span__eq(sp, "moby") ||
	       span__eq(sp, "buildkit");
}

int cgroup__classify(const char *relpath, struct cg_ident *out)
{
	struct span tail[TAIL_MAX], name, id;
	char uid[CG_UID_MAX];
	size_t plen, ncomp, ntail;
	enum pod_driver pod;
	enum runtime rt;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!relpath || relpath[0] != '/')
		return -EINVAL;

	plen = strlen(relpath);
	ncomp = path__tail(relpath, plen, tail, &ntail);
	if (ncomp == 0)
		return 0;
	name = tail[0];

	if (pod__match(tail, ntail, 0, uid) != POD_NONE) {
		out->kind = CG_POD;
		strcpy(out->pod_uid, uid);
		return 0;
	}

	pod = pod__match(tail, ntail, 1, uid);
	if (pod != POD_NONE) {
		rt = scope__match(name, pod == POD_CGROUPFS, &id);
		if (rt != RUNTIME_NONE)
			return ident__set_container(out, rt, id, uid);
		/*
		 * containerd's CRI plugin with cgroupfs names the cgroup by the bare id. Monitors
		 * (crio-conmon-...) and anything else with a runtime prefix are not containers.
		 */
		if (pod == POD_CGROUPFS && !span__has_runtime_prefix(name))
			return ident__set_container(out, RUNTIME_KUBEPODS, name, uid);
		return 0;
	}

	rt = scope__match(name, false, &id);
	if (rt != RUNTIME_NONE)
		return ident__set_container(out, rt, id, NULL);

	if (ntail >= 2) {
		struct span parent = tail[1];

		/* podman's cgroupfs manager nests containers (pods' too) below libpod_parent */
		if (scope__match(name, true, &id) == RUNTIME_PODMAN &&
		    !span__ends(name, ".scope") &&
		    path__has_component(relpath, plen, "libpod_parent"))
			return ident__set_container(out, RUNTIME_PODMAN, id, NULL);
		if (span__eq(parent, "docker") && span__is_hex_id(name))
			return ident__set_container(out, RUNTIME_DOCKER, name, NULL);
	}

	if (ncomp == 2) {
		struct span parent = tail[1];

		if (span__is_containerd_ns(parent))
			return ident__set_container(out, RUNTIME_CONTAINERD, name, NULL);
		/* other containerd namespaces, but not what systemd or the other runtimes own */
		if (span__is_hex_id(name) && !span__ends(parent, ".slice") &&
		    !span__ends(parent, ".scope") && !span__ends(parent, ".service") &&
		    !span__eq(parent, "kubepods") && !span__eq(parent, "docker") &&
		    !span__eq(parent, "libpod_parent"))
			return ident__set_container(out, RUNTIME_CONTAINERD, name, NULL);
	}
	return 0;
}

/* ---- tree walk ------------------------------------------------------------------------- */

struct cg_index_entry {
	uint64_t id;
	int32_t node;
};

struct cg_index {
	size_t n;
	struct cg_index_entry e[];
};

/*
 * How many of the innermost directories on the walk stack keep their fd open. Outer ancestors
 * are closed and reopened from the nearest open one (the root at worst) when the walk gets back
 * to them, so a tree hundreds of levels deep needs no more than this many fds plus the root.
 */
#define WALK_FD_WINDOW 16

struct walk_frame {
	int fd;		  /* -1 while closed to stay within WALK_FD_WINDOW */
	int32_t node;	  /* index in cg_tree.nodes */
	const char *name; /* entry in the parent frame's names; NULL for the root */
	char **names;	  /* subdirectories, sorted, visited in order */
	size_t nnames, next;
};

static void frame__release(struct walk_frame *f)
{
	size_t i;

	if (f->fd >= 0)
		close(f->fd);
	for (i = 0; i < f->nnames; i++)
		free(f->names[i]);
	free(f->names);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

static int name__cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * List the subdirectories of fd (not symlinks to them). Returns 0, -ENOMEM, or another -errno
 * when the directory cannot be read (it vanished: callers treat it as empty).
 */
static int dir__list_subdirs(int fd, char ***names_out, size_t *n_out)
{
	char **names = NULL, **tmp;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir = NULL;
	int dfd = -1, err = 0;

	/* fdopendir owns the fd it gets; the walk still needs fd for openat */
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0) {
		err = -errno;
		goto out;
	}
	dir = fdopendir(dfd);
	if (!dir) {
		err = -errno;
		goto out;
	}
	dfd = -1;
	/* a dup shares the file offset with fd: start from the first entry whatever it is */
	rewinddir(dir);
	for (;;) {
		bool is_dir;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			err = errno ? -errno : 0;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;

			/* some filesystems do not fill d_type; never stat through a symlink */
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			is_dir = S_ISDIR(st.st_mode);
		} else {
			is_dir = de->d_type == DT_DIR;
		}
		if (!is_dir)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			tmp = realloc(names, cap * sizeof(*names));
			if (!tmp) {
				err = -ENOMEM;
				goto out;
			}
			names = tmp;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			err = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), name__cmp); /* stable output across runs */
out:
	if (dir)
		closedir(dir);
	if (dfd >= 0)
		close(dfd);
	if (err == -ENOMEM) {
		while (n)
			free(names[--n]);
		free(names);
		names = NULL;
	}
	*names_out = names;
	*n_out = n;
	return err;
}

static int tree__add(struct cg_tree *t, uint64_t id, int32_t parent, int32_t depth, char *path)
{
	struct cg_node *tmp, *node;

	/* parent indexes and cg_tree__find results are 32-bit */
	if (t->n >= INT32_MAX)
		return -EOVERFLOW;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;

		tmp = realloc(t->nodes, cap * sizeof(*t->nodes));
		if (!tmp)
			return -ENOMEM;
		t->nodes = tmp;
		t->cap = cap;
	}
	node = &t->nodes[t->n];
	memset(node, 0, sizeof(*node));
	node->id = id;
	node->parent = parent;
	node->depth = depth;
	node->path = path;
	cgroup__classify(path, &node->ident);
	t->n++;
	return 0;
}

static char *path__join(const char *parent, const char *name)
{
	size_t pl = strlen(parent), nl = strlen(name);
	char *p;

	if (pl == 1) /* the root "/" */
		pl = 0;
	p = malloc(pl + 1 + nl + 1);
	if (!p)
		return NULL;
	memcpy(p, parent, pl);
	p[pl] = '/';
	memcpy(p + pl + 1, name, nl + 1);
	return p;
}

/* open name below dirfd as a directory, refusing symlinks and other filesystems */
static int dir__open_child(int dirfd, const char *name, dev_t dev, struct stat *st)
{
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	/* node ids are inode numbers, unique only within one filesystem */
	if (st->st_dev != dev) {
		close(fd);
		return -EXDEV;
	}
	return fd;
}

/*
 * Reopen the closed frames up to stack[top] from the nearest open ancestor, keeping the last
 * WALK_FD_WINDOW of them open for the frames the walk pops back to next. A directory that is
 * gone, or was replaced by another one with the same name, fails with -ENOENT.
 */
static int walk__reopen(const struct cg_tree *t, struct walk_frame *stack, size_t top, dev_t dev)
{
	size_t lo = top + 1 > WALK_FD_WINDOW ? top + 1 - WALK_FD_WINDOW : 1;
	size_t j = top, i;
	struct stat st;

	while (j > 0 && stack[j].fd < 0)
		j--;
	for (i = j + 1; i <= top; i++) {
		int fd = dir__open_child(stack[i - 1].fd, stack[i].name, dev, &st);

		if (fd >= 0 && (uint64_t)st.st_ino != t->nodes[stack[i].node].id) {
			close(fd);
			fd = -ENOENT;
		}
		if (i - 1 > j && i - 1 < lo) {
			close(stack[i - 1].fd);
			stack[i - 1].fd = -1;
		}
		if (fd < 0)
			return fd == -ENOMEM ? fd : -ENOENT;
		stack[i].fd = fd;
	}
	return 0;
}

static int index__cmp(const void *a, const void *b)
{
	const struct cg_index_entry *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int tree__build_index(struct cg_tree *t)
{
	struct cg_index *idx;
	size_t i;

	idx = malloc(sizeof(*idx) + t->n * sizeof(idx->e[0]));
	if (!idx)
		return -ENOMEM;
	idx->n = t->n;
	for (i = 0; i < t->n; i++) {
		idx->e[i].id = t->nodes[i].id;
		idx->e[i].node = (int32_t)i;
	}
	qsort(idx->e, idx->n, sizeof(idx->e[0]), index__cmp);
	t->index = idx;
	return 0;
}

int cg_tree__walk(struct cg_tree *t, const char *root)
{
	struct walk_frame *stack = NULL, *tmp;
	size_t sp = 0, cap = 0;
	char *path = NULL;
	struct stat st;
	dev_t dev;
	int fd = -1, err;

	memset(t, 0, sizeof(*t));

	/* the root itself may be reached through symlinks: the caller chose it */
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	dev = st.st_dev;
	path = strdup("/");
	if (!path) {
		err = -ENOMEM;
		goto out;
	}
	err = tree__add(t, (uint64_t)st.st_ino, -1, 0, path);
	if (err)
		goto out;
	path = NULL;

	cap = 64;
	stack = calloc(cap, sizeof(*stack));
	if (!stack) {
		err = -ENOMEM;
		goto out;
	}
	stack[0].fd = fd;
	stack[0].node = 0;
	fd = -1;
	sp = 1;
	err = dir__list_subdirs(stack[0].fd, &stack[0].names, &stack[0].nnames);
	if (err)
		goto out;

	while (sp > 0) {
		struct walk_frame *f = &stack[sp - 1];
		const char *name;
		int32_t node;

		if (f->next == f->nnames) {
			frame__release(f);
			sp--;
			continue;
		}
		name = f->names[f->next++];

		if (f->fd < 0) {
			err = walk__reopen(t, stack, sp - 1, dev);
			if (err == -ENOMEM)
				goto out;
			if (err) {
				/* gone while its siblings were walked: drop it with what is left */
				frame__release(f);
				sp--;
				err = 0;
				continue;
			}
		}

		fd = dir__open_child(f->fd, name, dev, &st);
		if (fd == -ENOMEM) {
			err = fd;
			fd = -1;
			goto out;
		}
		if (fd < 0) {
			/* vanished, turned into a symlink, or unreadable: not ours to report */
			fd = -1;
			continue;
		}

		path = path__join(t->nodes[f->node].path, name);
		if (!path) {
			err = -ENOMEM;
			goto out;
		}
		node = (int32_t)t->n;
		err = tree__add(t, (uint64_t)st.st_ino, f->node, t->nodes[f->node].depth + 1, path);
		if (err)
			goto out;
		path = NULL;

		if (sp == cap) {
			tmp = realloc(stack, cap * 2 * sizeof(*stack));
			if (!tmp) {
				err = -ENOMEM;
				goto out;
			}
			stack = tmp;
			cap *= 2;
			f = &stack[sp - 1];
		}
		memset(&stack[sp], 0, sizeof(stack[sp]));
		stack[sp].fd = fd;
		stack[sp].node = node;
		stack[sp].name = name;
		fd = -1;
		sp++;
		err = dir__list_subdirs(stack[sp - 1].fd, &stack[sp - 1].names,
					&stack[sp - 1].nnames);
		if (err == -ENOMEM)
			goto out;
		err = 0; /* unreadable now: a leaf */

		/* slide the fd window; the root stays open as the anchor for reopening */
		if (sp - 1 > WALK_FD_WINDOW && stack[sp - 1 - WALK_FD_WINDOW].fd >= 0) {
			close(stack[sp - 1 - WALK_FD_WINDOW].fd);
			stack[sp - 1 - WALK_FD_WINDOW].fd = -1;
		}
	}

	err = tree__build_index(t);
out:
	while (sp > 0)
		frame__release(&stack[--sp]);
	free(stack);
	free(path);
	if (fd >= 0)
		close(fd);
	if (err)
		cg_tree__free(t);
	return err;
}

int cg_tree__find(const struct cg_tree *t, uint64_t id)
{
	const struct cg_index *idx = t ? t->index : NULL;
	size_t lo = 0, hi;

	if (!idx)
		return -1;
	hi = idx->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (idx->e[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < idx->n && idx->e[lo].id == id)
		return idx->e[lo].node;
	return -1;
}

int cg_tree__copy(struct cg_tree *dst, const struct cg_tree *src)
{
	size_t idx_size =
	    src->index ? sizeof(*src->index) + src->index->n * sizeof(src->index->e[0]) : 0;

	memset(dst, 0, sizeof(*dst));
	if (!src->n)
		return 0;
	dst->nodes = malloc(src->n * sizeof(*dst->nodes));
	dst->index = idx_size ? malloc(idx_size) : NULL;
	if (!dst->nodes || (idx_size && !dst->index))
		goto nomem;
	memcpy(dst->nodes, src->nodes, src->n * sizeof(*dst->nodes));
	if (idx_size)
		memcpy(dst->index, src->index, idx_size);
	dst->cap = src->n;
	/* dst->n counts the paths copied so far: what cg_tree__free frees. */
	for (; dst->n < src->n; dst->n++) {
		dst->nodes[dst->n].path = strdup(src->nodes[dst->n].path);
		if (!dst->nodes[dst->n].path)
			goto nomem;
	}
	return 0;
nomem:
	cg_tree__free(dst);
	return -ENOMEM;
}

void cg_tree__free(struct cg_tree *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		free(t->nodes[i].path);
	free(t->nodes);
	free(t->index);
	memset(t, 0, sizeof(*t));
}

/* The next pid of a cgroup.procs text at *pos, or 0 at the end. Other lines are skipped. */
pid_t cgroup_procs__next(const char *buf, size_t len, size_t *pos)
{
	while (*pos < len) {
		const char *nl = memchr(buf + *pos, '\n', len - *pos);
		size_t end = nl ? (size_t)(nl - buf) : len, i;
		long v = 0;

		for (i = *pos; i < end; i++) {
			if (buf[i] < '0' || buf[i] > '9' || v > INT_MAX / 10) {
				v = 0;
				break;
			}
			v = v * 10 + (buf[i] - '0');
		}
		*pos = end + 1;
		if (v > 0 && v <= INT_MAX)
			return (pid_t)v;
	}
	return 0;
}
