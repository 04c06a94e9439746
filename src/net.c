// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network path, userspace side. See bpf/net.bpf.c for what the kernel side counts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_sched.h>
#include <netlink/netlink.h>
#include <netlink/route/classifier.h>

#include "tally/net.h"
#include "bpfmap.h"
#include "net.h"
#include "net.skel.h"
#include "caps.h"
#include "pin.h"
#include "util.h"

/*
 * tcx (6.6, commit e420bed02507) attach types and flag; libbpf 1.1's headers predate them.
 * BPF_F_BEFORE without a relative program puts tally first: it sees every packet the device
 * carries, before a program that drops or redirects, and passes each on unchanged, so the
 * others see what they saw before, in the same order among themselves.
 */
#define TALLY_BPF_TCX_INGRESS 46
#define TALLY_BPF_TCX_EGRESS  47
#define TALLY_BPF_F_BEFORE    (1U << 3)

/*
 * Classic tc: a priority and handle of tally's own, so its filter never shares a chain with
 * another party's and is never mistaken for one. Not 1, which most scripts take; the kernel
 * numbers filters added without a priority down from 0xC000, so this one runs ahead of those.
 * A filter ahead of it that ends classification (pass, drop, redirect) hides those packets
 * from it; with tcx, tally goes first.
 */
#define TALLY_TC_PRIORITY 0x7a11
#define TALLY_TC_HANDLE	  0x7a11

#define NET_IF_COUNTERS (sizeof(struct net_if_counter) / sizeof(uint64_t))

struct net_if_link {
	int ifindex;
	bool classic;
	bool filter[NET_IF_DIRS]; /* classic: tally's filter is on this direction */
	bool own_qdisc;		  /* classic: tally created the clsact qdisc */
	int link_fd[NET_IF_DIRS]; /* tcx: the links, -1 when none */
};

/*
 * Attaching and detaching a device's tc programs waits for an RCU grace period in the kernel
 * (about 17 ms each here, for 0.14 ms of CPU), so the agent has them done by one worker thread
 * (net__submit) while its loop goes on; readers of the counters never wait for it.
 *
 * Locking: op is held for a whole attach or detach (one at a time, the worker's or a caller's);
 * lock only for short updates and reads of what readers see (ifs, n_ifs, tcx, if_vals, the
 * queues), never across a syscall that waits. The programs, maps and pins are set at open.
 */
struct tally_net {
	struct net_bpf *skel;
	int nr_cpus;
	bool removal;
	bool tcx;		       /* try tcx links; cleared when the kernel refuses them */
	struct bpfmap_reader counters; /* of cg_net */
	uint64_t *if_vals;	       /* one if_net value for net__read_if (lock held) */
	uint64_t *zero_vals;	       /* one zeroed if_net value for a new entry (op held) */
	struct net_if_link *ifs;       /* max_ifaces: as many as if_net holds */
	size_t n_ifs, max_ifs;
	bool pinned; /* see net_opts.pin_root */
	struct pin pin;
	char replaced[PATH_MAX]; /* a stale layout's directory, removed after attach */
	pthread_mutex_t lock, op;
	pthread_cond_t cond;
	/* The worker: started on the first job, joined by net__free. */
	pthread_t thread;
	bool started, stop;
	unsigned hold;			   /* net__hold: while > 0, queued jobs wait */
	struct net_job *todo, **todo_tail; /* FIFO */
	struct net_job *done, **done_tail; /* FIFO: results in the order the jobs ran */
	unsigned pending;		   /* submitted, not drained */
};

static const char *const dir_names[NET_IF_DIRS] = {"in", "eg"};

/* The pin of a device's tcx link on one direction: tcx-<ifindex>-<in|eg>. */
static void tcx_pin_name(char *buf, size_t len, int ifindex, int dir)
{
	snprintf(buf, len, "tcx-%d-%s", ifindex, dir_names[dir]);
}

static int net__load(struct tally_net *n, const char *cgroot, const struct net_opts *o)
{
	uint32_t max_cgroups = o->max_cgroups ? o->max_cgroups : TALLY_NET_DEFAULT_MAX_CGROUPS;
	uint32_t max_ifaces = o->max_ifaces ? o->max_ifaces : TALLY_NET_DEFAULT_MAX_IFACES;
	struct net_bpf *skel;
	int cgfd = -1, err;

	skel = net_bpf__open();
	if (!skel)
		return -errno;
	skel->rodata->nr_cpus = n->nr_cpus;
	err = bpf_map__set_max_entries(skel->maps.cg_net, max_cgroups);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.cg_gone, max_cgroups);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.if_net, max_ifaces);
	if (err)
		goto out;
	bpf_program__set_autoload(skel->progs.handle_cgroup_rmdir, n->removal);
	if (o->pin_root) {
		uint64_t settings[] = {n->nr_cpus, max_cgroups, max_ifaces, n->removal};
		size_t len;
		const void *elf = net_bpf__elf_bytes(&len);

		err = pin__open(&n->pin, o->pin_root, "net",
				pin__layout(elf, len, settings, ARRAY_SIZE(settings)));
		if (!err)
			err = pin__maps(&n->pin, skel->obj);
		if (err)
			goto out;
	}
	err = net_bpf__load(skel);
	if (err)
		goto out;
	/* The removal handler; tc programs attach per device, cgroup_skb ones below. */
	err = o->pin_root ? pin__attach_skeleton(&n->pin, skel->skeleton) : net_bpf__attach(skel);
	if (err)
		goto out;
	cgfd = open(cgroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		err = -errno;
		goto out;
	}
	/*
	 * Links: multi-attach at the root, detached when tally exits whatever the reason; or
	 * pinned, and then the predecessor's are taken over.
	 */
	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		struct bpf_program *prog =
		    dir ? skel->progs.handle_cgroup_egress : skel->progs.handle_cgroup_ingress;
		struct bpf_link **link =
		    dir ? &skel->links.handle_cgroup_egress : &skel->links.handle_cgroup_ingress;
		char name[64];

		snprintf(name, sizeof(name), "link-%s", bpf_program__name(prog));
		*link = o->pin_root ? pin__link_get(&n->pin, name) : NULL;
		if (*link)
			continue;
		*link = bpf_program__attach_cgroup(prog, cgfd);
		if (!*link) {
			err = -errno;
			goto out;
		}
		err = o->pin_root ? pin__link_put(&n->pin, name, *link) : 0;
		if (err)
			goto out;
	}
	err = bpfmap_reader__init(&n->counters, bpf_map__fd(skel->maps.cg_net), n->nr_cpus,
				  sizeof(struct net_counter) / sizeof(uint64_t), max_cgroups, true);
	if (err)
		goto out;
	n->max_ifs = max_ifaces;
	n->ifs = calloc(max_ifaces, sizeof(*n->ifs));
	if (!n->ifs)
		err = -ENOMEM;
out:
	if (cgfd >= 0)
		close(cgfd);
	if (err) {
		net_bpf__destroy(skel);
		/* A directory this load created holds nothing a later load could use. */
		if (o->pin_root && !n->pin.reused && n->pin.dir[0])
			pin__remove_dir(n->pin.dir);
		return err < 0 ? err : -EINVAL;
	}
	n->skel = skel;
	n->pinned = o->pin_root != NULL;
	return 0;
}

static int prog_fd(struct tally_net *n, enum net_if_dir dir);

/*
 * A previous layout's tcx links move to the new programs in place (BPF_LINK_UPDATE swaps a
 * link's program atomically: no packet goes uncounted) and are pinned here; net__attach_if
 * takes them over. Then the old directory, its maps and its other links go.
 */
static int net__replace_stale(struct tally_net *n)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	int err;

	while (pin__next_stale(&n->pin, n->replaced, sizeof(n->replaced))) {
		DIR *d = opendir(n->replaced);

		while (d && (de = readdir(d))) {
			int ifindex, dir, fd, end = 0;
			char tail[3];

			if (sscanf(de->d_name, "tcx-%d-%2[a-z]%n", &ifindex, tail, &end) != 2 ||
			    de->d_name[end])
				continue;
			dir = !strcmp(tail, dir_names[NET_IF_EGRESS]) ? NET_IF_EGRESS : NET_IF_INGRESS;
			snprintf(path, sizeof(path), "%s/%s", n->replaced, de->d_name);
			fd = bpf_obj_get(path);
			if (fd < 0)
				continue;
			if (pin__link_alive(fd) && !bpf_link_update(fd, prog_fd(n, dir), NULL))
				pin__fd_put(&n->pin, de->d_name, fd);
			close(fd);
		}
		if (d)
			closedir(d);
		err = pin__remove_dir(n->replaced);
		if (err)
			return err;
	}
	return 0;
}

static bool tc_ours_on(struct tally_net *n, int ifindex, enum net_if_dir dir);

/*
 * A device's tc programs are still tally's, as a predecessor left them: both tcx links pinned
 * and attached, or (classic tc) both filters in place. Its if_net entry continues then.
 */
static bool net__still_attached(struct tally_net *n, int ifindex, bool tcx)
{
	char name[64];
	bool alive = true;

	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		int fd;

		if (!tcx) {
			alive = alive && tc_ours_on(n, ifindex, dir);
			continue;
		}
		tcx_pin_name(name, sizeof(name), ifindex, dir);
		fd = pin__get(&n->pin, name);
		alive = alive && fd >= 0 && pin__link_alive(fd);
		if (fd >= 0)
			close(fd);
	}
	return alive;
}

/*
 * Start-up over a predecessor's maps: the entries (and pins) of devices that went while no
 * agent ran are dropped; the others wait for net__attach_if to take them over.
 */
/* bpfmap__prune: a device's entry stays while tally's programs are on it; else its pins go. */
static bool if_net__keep(const void *key, void *ctx)
{
	struct tally_net *n = ctx;
	int ifindex = (int)*(const uint32_t *)key;
	char name[64];

	if (net__still_attached(n, ifindex, n->tcx))
		return true;
	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		tcx_pin_name(name, sizeof(name), ifindex, dir);
		pin__unlink(&n->pin, name);
	}
	return false;
}

static int net__prune_ifs(struct tally_net *n)
{
	return bpfmap__prune(bpf_map__fd(n->skel->maps.if_net), sizeof(uint32_t), if_net__keep, n);
}

struct tally_net *net__open(const char *cgroot, const struct net_opts *o)
{
	static const struct net_opts defaults;
	struct tally_net *n;
	int err;

	if (!o)
		o = &defaults;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	pthread_mutex_init(&n->lock, NULL);
	pthread_mutex_init(&n->op, NULL);
	pthread_cond_init(&n->cond, NULL);
	n->todo_tail = &n->todo;
	n->done_tail = &n->done;
	n->tcx = !o->force_tc_classic;
	n->nr_cpus = libbpf_num_possible_cpus();
	if (n->nr_cpus <= 0) {
		err = n->nr_cpus ? n->nr_cpus : -EINVAL;
		goto fail;
	}
	if (n->nr_cpus > TALLY_NET_MAX_CPUS) {
		err = -E2BIG;
		goto fail;
	}
	/* Without it, a removed cgroup keeps its entry (the CPU path prunes by walks). */
	n->removal = bpfmap__has_percpu_lookup();
	err = net__load(n, cgroot, o);
	if (!err && n->pinned)
		err = net__replace_stale(n);
	if (!err && n->pinned && n->pin.reused)
		err = net__prune_ifs(n);
	if (err)
		goto fail;
	n->if_vals = calloc((size_t)n->nr_cpus * NET_IF_COUNTERS, sizeof(*n->if_vals));
	n->zero_vals = calloc((size_t)n->nr_cpus * NET_IF_COUNTERS, sizeof(*n->zero_vals));
	if (!n->if_vals || !n->zero_vals) {
		err = -ENOMEM;
		goto fail;
	}
	return n;
fail:
	net__free(n);
	errno = -err;
	return NULL;
}

static struct net_if_link *net__find_if(const struct tally_net *n, int ifindex)
{
	for (size_t i = 0; i < n->n_ifs; i++)
		if (n->ifs[i].ifindex == ifindex)
			return &n->ifs[i];
	return NULL;
}

static int prog_fd(struct tally_net *n, enum net_if_dir dir)
{
	return bpf_program__fd(dir == NET_IF_INGRESS ? n->skel->progs.handle_tc_ingress
						     : n->skel->progs.handle_tc_egress);
}

static void detach_tcx(struct net_if_link *l)
{
	/* Closing a link detaches it; the kernel already did if the device went away. */
	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		if (l->link_fd[dir] >= 0)
			close(l->link_fd[dir]);
		l->link_fd[dir] = -1;
	}
}

static void unpin_tcx(struct tally_net *n, int ifindex)
{
	char name[64];

	for (int dir = 0; n->pinned && dir < NET_IF_DIRS; dir++) {
		tcx_pin_name(name, sizeof(name), ifindex, dir);
		pin__unlink(&n->pin, name);
	}
}

/* keep: take over the predecessor's pinned links (net__still_attached said they are there). */
static int attach_tcx(struct tally_net *n, struct net_if_link *l, bool keep)
{
	static const int types[NET_IF_DIRS] = {TALLY_BPF_TCX_INGRESS, TALLY_BPF_TCX_EGRESS};
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = TALLY_BPF_F_BEFORE);
	char name[64];

	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		int fd = -1, err;

		tcx_pin_name(name, sizeof(name), l->ifindex, dir);
		if (keep)
			fd = pin__get(&n->pin, name);
		if (fd < 0)
			fd = bpf_link_create(prog_fd(n, dir), l->ifindex,
					     (enum bpf_attach_type)types[dir], &opts);
		else
			keep = true;
		err = fd < 0 ? fd : 0;
		if (!err && n->pinned && !keep)
			err = pin__fd_put(&n->pin, name, fd);
		if (err) {
			if (fd >= 0)
				close(fd);
			detach_tcx(l);
			unpin_tcx(n, l->ifindex);
			return err;
		}
		l->link_fd[dir] = fd;
	}
	return 0;
}

static void tc_hook__init(struct bpf_tc_hook *hook, int ifindex, enum net_if_dir dir)
{
	memset(hook, 0, sizeof(*hook));
	hook->sz = sizeof(*hook);
	hook->ifindex = ifindex;
	hook->attach_point = dir == NET_IF_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

/* The name of the program the filter at tally's priority and handle runs. 0 or -errno. */
static int tc_filter_prog_name(const struct bpf_tc_hook *hook, char name[BPF_OBJ_NAME_LEN])
{
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = TALLY_TC_HANDLE, .priority = TALLY_TC_PRIORITY);
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	int fd, err;

	err = bpf_tc_query(hook, &q);
	if (err)
		return err;
	fd = bpf_prog_get_fd_by_id(q.prog_id);
	if (fd < 0)
		return -errno;
	err = bpf_obj_get_info_by_fd(fd, &info, &len) ? -errno : 0;
	close(fd);
	memcpy(name, info.name, BPF_OBJ_NAME_LEN);
	return err;
}

/* Whether the filter at tally's priority and handle runs a program named like prog. */
static bool tc_filter_is_ours(const struct bpf_tc_hook *hook, int prog_fd)
{
	struct bpf_prog_info ours = {};
	uint32_t len = sizeof(ours);
	char theirs[BPF_OBJ_NAME_LEN];

	return !tc_filter_prog_name(hook, theirs) &&
	       !bpf_obj_get_info_by_fd(prog_fd, &ours, &len) &&
	       !strncmp(theirs, ours.name, sizeof(ours.name));
}

static bool tc_ours_on(struct tally_net *n, int ifindex, enum net_if_dir dir)
{
	struct bpf_tc_hook hook;

	tc_hook__init(&hook, ifindex, dir);
	return tc_filter_is_ours(&hook, prog_fd(n, dir));
}

static int attach_tc_filter(struct tally_net *n, int ifindex, enum net_if_dir dir)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd(n, dir), .handle = TALLY_TC_HANDLE,
		    .priority = TALLY_TC_PRIORITY);
	struct bpf_tc_hook hook;
	int err;

	tc_hook__init(&hook, ifindex, dir);
	err = bpf_tc_attach(&hook, &opts);
	/*
	 * Classic filters outlive the process that added them: one of tally's own left by a
	 * tally that did not exit cleanly is taken over. Anyone else's stays.
	 */
	if (err == -EEXIST && tc_filter_is_ours(&hook, opts.prog_fd)) {
		opts.flags = BPF_TC_F_REPLACE;
		opts.prog_id = 0;
		err = bpf_tc_attach(&hook, &opts);
	}
	return err;
}

/* Number of filters on one direction of a device's clsact qdisc. */
static int tc_count_filters(int ifindex, enum net_if_dir dir, int *count)
{
	uint32_t parent =
	    TC_H_MAKE(TC_H_CLSACT, dir == NET_IF_INGRESS ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
	struct nl_cache *cache = NULL;
	struct nl_sock *sk;
	int err;

	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	err = nl_connect(sk, NETLINK_ROUTE);
	if (!err)
		err = rtnl_cls_alloc_cache(sk, ifindex, parent, &cache);
	if (!err)
		*count = nl_cache_nitems(cache);
	nl_cache_free(cache);
	nl_socket_free(sk);
	/* libnl's own error numbers do not map back to errno. */
	return err ? -EIO : 0;
}

/* Delete the clsact qdisc tally created, unless someone else's filters are on it by now. */
static void tc_remove_own_qdisc(struct net_if_link *l)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = l->ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int in = 0, out = 0;

	if (!l->own_qdisc || tc_count_filters(l->ifindex, NET_IF_INGRESS, &in) ||
	    tc_count_filters(l->ifindex, NET_IF_EGRESS, &out) || in || out)
		return;
	/* Both attach points at once: that deletes the qdisc; one alone flushes its filters. */
	bpf_tc_hook_destroy(&hook);
	l->own_qdisc = false;
}

/* A device that is gone took its qdisc and filters with it. */
static bool gone(int err)
{
	return err == -ENODEV || err == -ENOENT || err == -EINVAL;
}

static int detach_classic(struct net_if_link *l)
{
	int ret = 0;

	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TALLY_TC_HANDLE,
			    .priority = TALLY_TC_PRIORITY);
		struct bpf_tc_hook hook;
		int err;

		/* Only what tally put there: the same priority and handle may be another's. */
		if (!l->filter[dir])
			continue;
		l->filter[dir] = false;
		tc_hook__init(&hook, l->ifindex, dir);
		err = bpf_tc_detach(&hook, &opts);
		if (err && !gone(err) && !ret)
			ret = err;
	}
	tc_remove_own_qdisc(l);
	return ret;
}

static int attach_classic(struct tally_net *n, struct net_if_link *l)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = l->ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int err;

	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	l->own_qdisc = !err;
	l->classic = true;
	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		err = attach_tc_filter(n, l->ifindex, dir);
		if (err) {
			detach_classic(l);
			return err;
		}
		l->filter[dir] = true;
	}
	return 0;
}

/* net__attach_if with n->op held. */
static int net__attach_op(struct tally_net *n, int ifindex)
{
	struct net_if_link l = {.ifindex = ifindex, .link_fd = {-1, -1}};
	uint32_t key = ifindex;
	bool keep, found, full, tcx;
	int err;

	if (ifindex <= 0)
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	found = net__find_if(n, ifindex) != NULL;
	full = n->n_ifs == n->max_ifs;
	tcx = n->tcx;
	pthread_mutex_unlock(&n->lock);
	if (found)
		return 0;
	if (full)
		return -E2BIG;
	/*
	 * The programs only find entries, so a packet racing a detach never re-creates one. A
	 * predecessor's entry continues when its programs are still on the device.
	 */
	keep = n->pinned && net__still_attached(n, ifindex, tcx);
	err = bpf_map_update_elem(bpf_map__fd(n->skel->maps.if_net), &key, n->zero_vals,
				  keep ? BPF_NOEXIST : BPF_ANY);
	if (err == -EEXIST && keep)
		err = 0;
	if (err)
		return err;
	err = -EINVAL;
	if (tcx) {
		err = attach_tcx(n, &l, keep);
		/* No tcx (6.6, or no CONFIG_NET_XGRESS): classic tc from now on. */
		if (err == -EINVAL || err == -EOPNOTSUPP) {
			tcx = false;
			pthread_mutex_lock(&n->lock);
			n->tcx = false;
			pthread_mutex_unlock(&n->lock);
		}
	}
	if (!tcx)
		err = attach_classic(n, &l);
	if (err) {
		bpf_map_delete_elem(bpf_map__fd(n->skel->maps.if_net), &key);
		return err;
	}
	pthread_mutex_lock(&n->lock);
	n->ifs[n->n_ifs++] = l;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

int net__attach_if(struct tally_net *n, int ifindex)
{
	int err;

	pthread_mutex_lock(&n->op);
	err = net__attach_op(n, ifindex);
	pthread_mutex_unlock(&n->op);
	return err;
}

static int net_if_link__detach(struct tally_net *n, struct net_if_link *l)
{
	uint32_t key = l->ifindex;
	int err = 0;

	if (l->classic)
		err = detach_classic(l);
	else
		detach_tcx(l);
	unpin_tcx(n, l->ifindex);
	bpf_map_delete_elem(bpf_map__fd(n->skel->maps.if_net), &key);
	return err;
}

/* net__detach_if with n->op held: readers stop seeing the device first, then it goes. */
static int net__detach_op(struct tally_net *n, int ifindex)
{
	struct net_if_link *found, l;

	pthread_mutex_lock(&n->lock);
	found = net__find_if(n, ifindex);
	if (found) {
		l = *found;
		*found = n->ifs[--n->n_ifs];
	}
	pthread_mutex_unlock(&n->lock);
	return found ? net_if_link__detach(n, &l) : -ENOENT;
}

int net__detach_if(struct tally_net *n, int ifindex)
{
	int err;

	pthread_mutex_lock(&n->op);
	err = net__detach_op(n, ifindex);
	pthread_mutex_unlock(&n->op);
	return err;
}

bool net__is_attached(const struct tally_net *n, int ifindex)
{
	struct tally_net *w = (struct tally_net *)n; /* the lock, not the state */
	bool found;

	pthread_mutex_lock(&w->lock);
	found = net__find_if(n, ifindex) != NULL;
	pthread_mutex_unlock(&w->lock);
	return found;
}

const char *net__tc_mode(const struct tally_net *n)
{
	struct tally_net *w = (struct tally_net *)n;
	bool tcx;

	pthread_mutex_lock(&w->lock);
	tcx = n->tcx;
	pthread_mutex_unlock(&w->lock);
	return tcx ? "tcx" : "tc";
}

bool net__tracks_removal(const struct tally_net *n)
{
	return n->removal;
}

static void net__worker_stop(struct tally_net *n)
{
	pthread_mutex_lock(&n->lock);
	n->stop = true;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
	/* The job under way finishes (an attach cannot be interrupted); queued ones never run. */
	if (n->started)
		pthread_join(n->thread, NULL);
	n->started = false;
	for (struct net_job *j = n->todo, *next; j; j = next) {
		next = j->next;
		free(j);
	}
	for (struct net_job *j = n->done, *next; j; j = next) {
		next = j->next;
		free(j);
	}
	n->todo = n->done = NULL;
}

void net__free(struct tally_net *n)
{
	if (!n)
		return;
	net__worker_stop(n);
	/* Pinned: the devices stay counted for the next agent; only the fds go. */
	while (n->n_ifs && n->pinned)
		detach_tcx(&n->ifs[--n->n_ifs]);
	while (n->n_ifs)
		net_if_link__detach(n, &n->ifs[--n->n_ifs]);
	net_bpf__destroy(n->skel);
	bpfmap_reader__fini(&n->counters);
	free(n->if_vals);
	free(n->zero_vals);
	free(n->ifs);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->op);
	pthread_cond_destroy(&n->cond);
	free(n);
}

/* bpfmap_add_fn: one cgroup's counters, summed over CPUs, in struct net_counter's order. */
static int sample__add_sum(void *ctx, uint64_t cgid, const uint64_t *sum)
{
	struct net_sample *s = ctx;
	struct net_counter v;
	struct net_cg_entry *e;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;

		e = realloc(s->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		s->e = e;
		s->cap = cap;
	}
	memcpy(&v, sum, sizeof(v));
	s->e[s->n++] = (struct net_cg_entry){
	    .cgid = cgid,
	    .rx_bytes = v.rx_bytes,
	    .rx_packets = v.rx_packets,
	    .tx_bytes = v.tx_bytes,
	    .tx_packets = v.tx_packets,
	};
	return 0;
}

int net__read_cgroups(struct tally_net *n, struct net_sample *s)
{
	int err;

	s->n = 0;
	err = bpfmap_reader__read(&n->counters, sample__add_sum, s);
	if (err)
		return err;
	s->ts_ns = clock__monotonic_ns();
	s->map_entries = s->n;
	if (s->n)
		qsort(s->e, s->n, sizeof(*s->e), bpfmap__key_cmp);
	s->dropped_updates = n->skel->bss->drops.cg_updates;
	s->dropped_bytes = n->skel->bss->drops.cg_bytes;
	return 0;
}

void net_sample__free(struct net_sample *s)
{
	free(s->e);
	memset(s, 0, sizeof(*s));
}

const struct net_cg_entry *net_sample__find(const struct net_sample *s, uint64_t cgid)
{
	struct net_cg_entry key = {.cgid = cgid};

	if (!s->n)
		return NULL;
	return bsearch(&key, s->e, s->n, sizeof(*s->e), bpfmap__key_cmp);
}

int net__read_if(struct tally_net *n, int ifindex, struct net_if_counter *out)
{
	uint64_t sum[NET_IF_COUNTERS];
	uint32_t key = ifindex;
	int err;

	/* A lookup does not wait: the lock over the shared buffer costs the worker nothing. */
	pthread_mutex_lock(&n->lock);
	err = bpf_map_lookup_elem(bpf_map__fd(n->skel->maps.if_net), &key, n->if_vals);
	if (!err)
		bpfmap__sum_percpu(n->if_vals, n->nr_cpus, NET_IF_COUNTERS, sum);
	pthread_mutex_unlock(&n->lock);
	if (err)
		return err;
	memcpy(out, sum, sizeof(*out));
	return 0;
}

const char *net__replaced(const struct tally_net *n)
{
	return n->replaced;
}

/* Whether the filter at tally's priority and handle runs one of tally's tc programs. */
static bool tc_filter_is_tallys(const struct bpf_tc_hook *hook)
{
	char name[BPF_OBJ_NAME_LEN];

	/* Any tally build's, by name (cut to 15 bytes): "handle_tc_ingre", "handle_tc_egres". */
	return !tc_filter_prog_name(hook, name) && !strncmp(name, "handle_tc_", 10);
}

int net__remove_classic_filters(void)
{
	struct if_nameindex *ifs = if_nameindex();
	int removed = 0;

	if (!ifs)
		return -errno;
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		for (int dir = 0; dir < NET_IF_DIRS; dir++) {
			LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TALLY_TC_HANDLE,
				    .priority = TALLY_TC_PRIORITY);
			struct bpf_tc_hook hook;

			tc_hook__init(&hook, (int)i->if_index, dir);
			if (tc_filter_is_tallys(&hook) && !bpf_tc_detach(&hook, &opts))
				removed++;
		}
	}
	if_freenameindex(ifs);
	return removed;
}

struct net_bpf *net__skel(struct tally_net *n)
{
	return n->skel;
}

static void *net__worker(void *arg)
{
	struct tally_net *n = arg;

	pthread_mutex_lock(&n->lock);
	for (;;) {
		struct net_job *j;

		while ((!n->todo || n->hold) && !n->stop)
			pthread_cond_wait(&n->cond, &n->lock);
		if (n->stop)
			break;
		j = n->todo;
		n->todo = j->next;
		if (!n->todo)
			n->todo_tail = &n->todo;
		pthread_mutex_unlock(&n->lock);
		/*
		 * Capabilities are per thread: this one was started before the agent dropped its
		 * own, so it drops whatever the process (its main thread) has dropped since.
		 */
		caps__follow_process();
		pthread_mutex_lock(&n->op);
		j->err = j->attach ? net__attach_op(n, j->ifindex) : net__detach_op(n, j->ifindex);
		pthread_mutex_unlock(&n->op);
		pthread_mutex_lock(&n->lock);
		j->next = NULL;
		*n->done_tail = j;
		n->done_tail = &j->next;
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int net__submit(struct tally_net *n, int ifindex, bool attach, uint64_t cookie)
{
	struct net_job *j = malloc(sizeof(*j));
	int err = 0;

	if (!j)
		return -ENOMEM;
	*j = (struct net_job){.ifindex = ifindex, .attach = attach, .cookie = cookie};
	pthread_mutex_lock(&n->lock);
	if (!n->started) {
		err = -pthread_create(&n->thread, NULL, net__worker, n);
		n->started = !err;
	}
	if (!err) {
		*n->todo_tail = j;
		n->todo_tail = &j->next;
		n->pending++;
		pthread_cond_signal(&n->cond);
	}
	pthread_mutex_unlock(&n->lock);
	if (err)
		free(j);
	return err;
}

void net__drain(struct tally_net *n, void (*done)(const struct net_job *j, void *ctx), void *ctx)
{
	struct net_job *j;

	pthread_mutex_lock(&n->lock);
	j = n->done;
	n->done = NULL;
	n->done_tail = &n->done;
	pthread_mutex_unlock(&n->lock);
	while (j) {
		struct net_job *next = j->next;

		done(j, ctx);
		pthread_mutex_lock(&n->lock);
		n->pending--;
		pthread_mutex_unlock(&n->lock);
		free(j);
		j = next;
	}
}

unsigned net__pending(struct tally_net *n)
{
	unsigned pending;

	pthread_mutex_lock(&n->lock);
	pending = n->pending;
	pthread_mutex_unlock(&n->lock);
	return pending;
}

void net__hold(struct tally_net *n, bool hold)
{
	pthread_mutex_lock(&n->lock);
	if (hold)
		n->hold++;
	else if (n->hold)
		n->hold--;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
}
