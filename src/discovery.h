/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Discovery: where cgroup v2 is mounted, which cgroups exist, and which of them are
 * containers or pods. Pure parsers take buffers or root paths so tests feed them fixtures.
 */
#ifndef __TALLY_DISCOVERY_H
#define __TALLY_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Find the cgroup2 mount point in a /proc/<pid>/mountinfo buffer (NUL-terminated).
 * Mount points are unescaped (\040 -> space, ...). When several cgroup2 mounts exist the one
 * that shows the most of the hierarchy wins: a root field of "/.." (the host's tree, seen
 * from a container's cgroup namespace) over "/" over a subtree; the first of equals. Returns 0, -ENOENT when there is none, -ENAMETOOLONG
 * when it does not fit in out.
 */
int cgroup2__find_mount(const char *mountinfo, char *out, size_t outlen);
/* Same, reading the file at path (normally "/proc/self/mountinfo"). Returns 0 or -errno. */
int cgroup2__find_mount_file(const char *path, char *out, size_t outlen);

enum runtime {
	RUNTIME_NONE = 0,   /* not a container */
	RUNTIME_DOCKER,	    /* docker-<id>.scope, /docker/<id> */
	RUNTIME_CONTAINERD, /* cri-containerd-<id>.scope, /<namespace>/<id> (runc cgroupfs default)
			     */
	RUNTIME_CRIO,	    /* crio-<id>.scope */
	RUNTIME_PODMAN,	    /* libpod-<id>.scope, /libpod_parent/libpod-<id> */
	RUNTIME_KUBEPODS,   /* cgroupfs kubelet: /kubepods/.../pod<uid>/<id>, runtime unknown */
};

/* Name of a runtime for output: "docker", "containerd", "cri-o", "podman", "kubernetes"; NULL for
 * NONE. */
const char *runtime__name(enum runtime rt);

enum cg_kind {
	CG_OTHER = 0, /* any other cgroup (system service, slice, user session) */
	CG_POD,	      /* a Kubernetes pod's cgroup: kubepods...pod<uid> */
	CG_CONTAINER, /* a container's cgroup */
};

#define CG_ID_MAX  128 /* container ids: 64 hex for most runtimes, free-form for ctr */
#define CG_UID_MAX 37  /* pod uid with dashes, 36 chars + NUL */

struct cg_ident {
	enum cg_kind kind;
	enum runtime runtime;	  /* RUNTIME_NONE unless kind == CG_CONTAINER */
	char id[CG_ID_MAX];	  /* container id, "" unless CG_CONTAINER */
	char pod_uid[CG_UID_MAX]; /* pod uid (dashes), "" when not in a pod */
};

/*
 * Classify a cgroup by its path relative to the cgroup2 root ("/", "/a/b", never a trailing
 * slash). Pure: looks only at the string. Always fills *out (kind CG_OTHER when nothing
 * matched) and returns 0; -EINVAL for a path not starting with '/'.
 */
int cgroup__classify(const char *relpath, struct cg_ident *out);

/* One cgroup v2 directory, found by cg_tree__walk. */
struct cg_node {
	uint64_t id;	/* cgroup v2 id = inode number of the directory */
	int32_t parent; /* index of the parent node in cg_tree.nodes, -1 for the root */
	int32_t depth;	/* 0 for the root */
	char *path;	/* relative to the cgroup2 root: "/" or "/a/b" (malloc'd) */
	struct cg_ident ident;
};

struct cg_tree {
	struct cg_node *nodes; /* pre-order: a parent always comes before its children */
	size_t n, cap;
	struct cg_index *index; /* sorted (id, node) pairs for cg_tree__find; internal */
};

/*
 * Walk the directory tree at root (a cgroup2 mount, or a fixture directory) iteratively, never
 * recursing on the C stack and never following symlinks, and fill t (which must be zeroed or
 * freed). Directories that vanish during the walk are skipped silently. Every node is
 * classified. Returns 0 or -errno (only for the root itself or out of memory).
 */
int cg_tree__walk(struct cg_tree *t, const char *root);
/* Index of the node with this cgroup id, or -1. O(log n). */
int cg_tree__find(const struct cg_tree *t, uint64_t id);
/* A deep copy of src into dst (which must be zeroed or freed). 0 or -ENOMEM (dst zeroed). */
int cg_tree__copy(struct cg_tree *dst, const struct cg_tree *src);
void cg_tree__free(struct cg_tree *t); /* accepts a zeroed tree; leaves it zeroed */

/*
 * The next pid of a cgroup.procs text (buf, len) from *pos on, advancing *pos; 0 at the end.
 * Lines that are not a positive pid are skipped.
 */
pid_t cgroup_procs__next(const char *buf, size_t len, size_t *pos);

#endif /* __TALLY_DISCOVERY_H */
