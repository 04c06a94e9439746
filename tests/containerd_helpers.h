/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A real containerd node for the tests, built from Debian's packages: a containerd of the
 * test's own (its root, state, config and sockets in a temporary directory named after the
 * test's pid, started and stopped by pid), an image built here from busybox-static and
 * imported (no registry), containers run with `ctr`, and a pod network made the way a CNI
 * runtime makes one, by running the bridge and host-local plugins. ctrd_cleanup() in the
 * suite's .fini removes all of it, even after a failed assertion; a report hook sweeps what a
 * test that crashed left behind.
 */
#ifndef __TALLY_TESTS_CONTAINERD_HELPERS_H
#define __TALLY_TESTS_CONTAINERD_HELPERS_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The containerd namespace: one whose /<namespace>/<id> cgroups tally names "containerd". */
#define CTRD_NS	   "default"
#define CTRD_IMAGE "tally.test/busybox:latest"

struct ctrd {
	char dir[96];	/* /tmp/tally-test-ctrd-<pid>: root, state, sockets, config, logs */
	char sock[128]; /* its gRPC socket */
	pid_t pid;	/* the containerd process */
};

/* A pod network: netns, host bridge, a veth from the CNI bridge plugin. */
struct ctrd_net {
	char netns[64];		  /* "tally-test-ctrd-<pid>", under /run/netns */
	char bridge[IF_NAMESIZE]; /* "tlycd<pid>" */
	char host[IF_NAMESIZE];	  /* the host-side veth, as the plugin named it */
	char ip[16], gw[16];	  /* the pod's address, the bridge's */
};

/* Whether the packages the suite needs are installed; if not, why, in why. */
bool ctrd_available(char *why, size_t len);

/* Start containerd (waits until it answers) and import the busybox image. */
void ctrd_start(struct ctrd *c);

/*
 * Run `ctr --address SOCK --namespace CTRD_NS ARGS` (bounded by timeout(1)), its stdout and
 * stderr into out; returns its exit status.
 */
int ctrd_ctr(const struct ctrd *c, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * `ctr run -d` a container of the image running `/bin/sh -c script` (no single quotes in it),
 * in netns (a path; NULL: a new one of its own). Returns the pid of its first process.
 */
pid_t ctrd_run(const struct ctrd *c, const char *id, const char *netns, const char *script);
/* Kill and delete the task and the container (its snapshot goes with it). */
void ctrd_remove(const struct ctrd *c, const char *id);

/* The upperdir and lowerdir of a container's snapshot, from `ctr snapshots mounts`. */
void ctrd_snapshot_dirs(const struct ctrd *c, const char *key, char *upper, char *lower,
			size_t len);
/* `ctr snapshots usage -b KEY`: bytes and inodes. */
void ctrd_snapshot_usage(const struct ctrd *c, const char *key, uint64_t *bytes, uint64_t *inodes);

/*
 * A netns with IPv6 off, a host bridge with IPv6 off, then CNI ADD (bridge + host-local) on
 * a /29 of its own; the host end's IPv6 off and permanent neighbour entries on both sides, so
 * that the pod's veth carries only the test's traffic. ip_forward, which the plugin turns on,
 * is put back.
 */
void ctrd_net_create(const struct ctrd *c, struct ctrd_net *n);

/* Remove everything this process made (containers, containerd, mounts, cgroups, network). */
void ctrd_cleanup(void);

#endif /* __TALLY_TESTS_CONTAINERD_HELPERS_H */
