// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network path, userspace side. See bpf/net.bpf.c for what the kernel side counts.
 */
#include <errno.h>
#include <fcntl.h>
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

struct tally_net {
	struct net_bpf *skel;
	int nr_cpus;
	bool removal;
	bool tcx;		       /* try tcx links; cleared when the kernel refuses them */
	struct bpfmap_reader counters; /* of cg_net */
	uint64_t *if_vals;	       /* one if_net value: nr_cpus * NET_IF_COUNTERS */
	struct net_if_link *ifs;       /* max_ifaces: as many as if_net holds */
	size_t n_ifs, max_ifs;
};

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
	err = net_bpf__load(skel);
	if (err)
		goto out;
	/* The removal handler; tc programs attach per device, cgroup_skb ones below. */
	err = net_bpf__attach(skel);
	if (err)
		goto out;
	cgfd = open(cgroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		err = -errno;
		goto out;
	}
	/* Links: multi-attach at the root, detached when tally exits whatever the reason. */
	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		struct bpf_program *prog =
		    dir ? skel->progs.handle_cgroup_egress : skel->progs.handle_cgroup_ingress;
		struct bpf_link **link =
		    dir ? &skel->links.handle_cgroup_egress : &skel->links.handle_cgroup_ingress;

		*link = bpf_program__attach_cgroup(prog, cgfd);
		if (!*link) {
			err = -errno;
			goto out;
		}
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
		return err < 0 ? err : -EINVAL;
	}
	n->skel = skel;
	return 0;
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
	if (err)
		goto fail;
	n->if_vals = calloc((size_t)n->nr_cpus * NET_IF_COUNTERS, sizeof(*n->if_vals));
	if (!n->if_vals) {
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

static int attach_tcx(struct tally_net *n, struct net_if_link *l)
{
	static const int types[NET_IF_DIRS] = {TALLY_BPF_TCX_INGRESS, TALLY_BPF_TCX_EGRESS};
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = TALLY_BPF_F_BEFORE);

	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		int fd = bpf_link_create(prog_fd(n, dir), l->ifindex,
					 (enum bpf_attach_type)types[dir], &opts);

		if (fd < 0) {
			detach_tcx(l);
			return fd;
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

/* Whether the filter at tally's priority and handle runs a program named like prog. */
static bool tc_filter_is_ours(const struct bpf_tc_hook *hook, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = TALLY_TC_HANDLE, .priority = TALLY_TC_PRIORITY);
	struct bpf_prog_info theirs = {}, ours = {};
	uint32_t len = sizeof(theirs);
	int fd;
	bool same;

	if (bpf_tc_query(hook, &q))
		return false;
	fd = bpf_prog_get_fd_by_id(q.prog_id);
	if (fd < 0)
		return false;
	same = !bpf_obj_get_info_by_fd(fd, &theirs, &len);
	close(fd);
	len = sizeof(ours);
	same = same && !bpf_obj_get_info_by_fd(prog_fd, &ours, &len);
	return same && !strncmp(theirs.name, ours.name, sizeof(ours.name));
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

int net__attach_if(struct tally_net *n, int ifindex)
{
	uint32_t key = ifindex;
	struct net_if_link *l;
	int err;

	if (ifindex <= 0)
		return -EINVAL;
	if (net__find_if(n, ifindex))
		return 0;
	if (n->n_ifs == n->max_ifs)
		return -E2BIG;
	l = &n->ifs[n->n_ifs];
	*l = (struct net_if_link){.ifindex = ifindex, .link_fd = {-1, -1}};
	/* The programs only find entries, so a packet racing a detach never re-creates one. */
	memset(n->if_vals, 0, (size_t)n->nr_cpus * sizeof(struct net_if_counter));
	err = bpf_map_update_elem(bpf_map__fd(n->skel->maps.if_net), &key, n->if_vals, BPF_ANY);
	if (err)
		return err;
	err = -EINVAL;
	if (n->tcx) {
		err = attach_tcx(n, l);
		/* No tcx (6.6, or no CONFIG_NET_XGRESS): classic tc from now on. */
		if (err == -EINVAL || err == -EOPNOTSUPP)
			n->tcx = false;
	}
	if (!n->tcx)
		err = attach_classic(n, l);
	if (err) {
		bpf_map_delete_elem(bpf_map__fd(n->skel->maps.if_net), &key);
		return err;
	}
	n->n_ifs++;
	return 0;
}

static int net_if_link__detach(struct tally_net *n, struct net_if_link *l)
{
	uint32_t key = l->ifindex;
	int err = 0;

	if (l->classic)
		err = detach_classic(l);
	else
		detach_tcx(l);
	bpf_map_delete_elem(bpf_map__fd(n->skel->maps.if_net), &key);
	return err;
}

int net__detach_if(struct tally_net *n, int ifindex)
{
	struct net_if_link *l = net__find_if(n, ifindex);
	int err;

	if (!l)
		return -ENOENT;
	err = net_if_link__detach(n, l);
	*l = n->ifs[--n->n_ifs];
	return err;
}

bool net__is_attached(const struct tally_net *n, int ifindex)
{
	return net__find_if(n, ifindex) != NULL;
}

const char *net__tc_mode(const struct tally_net *n)
{
	return n->tcx ? "tcx" : "tc";
}

bool net__tracks_removal(const struct tally_net *n)
{
	return n->removal;
}

void net__free(struct tally_net *n)
{
	if (!n)
		return;
	while (n->n_ifs)
		net_if_link__detach(n, &n->ifs[--n->n_ifs]);
	net_bpf__destroy(n->skel);
	bpfmap_reader__fini(&n->counters);
	free(n->if_vals);
	free(n->ifs);
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

	err = bpf_map_lookup_elem(bpf_map__fd(n->skel->maps.if_net), &key, n->if_vals);
	if (err)
		return err;
	bpfmap__sum_percpu(n->if_vals, n->nr_cpus, NET_IF_COUNTERS, sum);
	memcpy(out, sum, sizeof(*out));
	return 0;
}

struct net_bpf *net__skel(struct tally_net *n)
{
	return n->skel;
}
