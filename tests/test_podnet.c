// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Pod networks through the collector, on real namespaces and veths: a pod's namespace is
 * found from its container's process, its veth matched to the host end, tc attached there;
 * when the veth or the whole pod goes, nothing of it is left: no namespace entry, no tc
 * program, no device counters, no open fd.
 */
#include <dirent.h>
#include <stdint.h>
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <linux/magic.h>

#include "collect.h"
#include "helpers.h"
#include "net.skel.h"
#include "net_helpers.h"
#include "pin.h"

static char pins[128];
static bool mounted_bpffs;

static void init(void)
{
	struct statfs st;

	snprintf(pins, sizeof(pins), "/sys/fs/bpf/tally-test-podnet-%d", (int)getpid());
	mounted_bpffs = statfs("/sys/fs/bpf", &st) || (uint64_t)st.f_type != BPF_FS_MAGIC;
}

static void fini(void)
{
	pin__remove_all(pins); /* the links pinned there detach */
	th_cleanup();
	nh_cleanup();
	if (mounted_bpffs)
		umount2("/sys/fs/bpf", MNT_DETACH | UMOUNT_NOFOLLOW);
}

TestSuite(podnet, .init = init, .fini = fini, .timeout = 60);

/* Open fds of this process whose /proc/self/fd link is one match(fd, target, ctx) takes. */
static int count_fds(bool (*match)(int fd, const char *target, void *ctx), void *ctx)
{
	char path[300], got[64];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, got, sizeof(got) - 1);
		if (len <= 0)
			continue;
		got[len] = '\0';
		n += match(atoi(e->d_name), got, ctx);
	}
	closedir(d);
	return n;
}

static bool is_netns(int fd, const char *target, void *ctx)
{
	return !strcmp(target, ctx);
}

/* Open fds of this process that refer to the network namespace of inode ino. */
static int fds_on_netns(uint64_t ino)
{
	char want[64];

	snprintf(want, sizeof(want), "net:[%llu]", (unsigned long long)ino);
	return count_fds(is_netns, want);
}

/* The pod row of the latest generation for cgroup abs. */
static void usage_of(struct collector *c, const char *abs, struct cg_usage *u)
{
	int i = collector__find(c, th_cgroup_id(abs));

	cr_assert_geq(i, 0, "%s not in the walk", abs);
	collector__usage(c, (size_t)i, u);
}

Test(podnet, pod_found_then_everything_goes_with_it)
{
	static const char uid[] = "1a2b3c4d-0000-4111-8222-933344455566";
	static const char cid[] = "eeee0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	const char *top = th_test_cgroup("podnet") + strlen(th_cgroot()) + 1;
	char rel[1024], pod[512];
	struct collector *c;
	struct net_if_counter ic;
	struct cg_usage u;
	struct nh_link l;
	const char *cg;
	uint64_t ino = 0;
	pid_t pid;

	nh_link_create(&l, "podnet-life", "pl");
	snprintf(pod, sizeof(pod), "%s/kubepods/pod%s", top, uid);
	snprintf(rel, sizeof(rel), "%s/%s", pod, cid);
	cg = th_cgroup_create(rel);
	c = collector__new(th_cgroot(), NULL);
	cr_assert_not_null(c, "collector: %s", strerror(errno));
	cr_assert_not_null(collector__podnet(c), "%s", collector__net_error(c));

	/* No process yet: nothing to look into, and said so. */
	cr_assert_eq(collector__collect(c), 0);
	usage_of(c, cg, &u);
	cr_expect_null(u.netns);
	cr_expect_not(u.host_network);
	cr_expect_str_eq(u.netns_why, "no process in the cgroup");

	pid = nh_sleeper_start(cg, l.ns);
	cr_assert_eq(collector__collect(c), 0);
	usage_of(c, cg, &u);
	cr_assert_not_null(u.netns, "namespace not found: %s", u.netns_why);
	cr_assert_eq(u.netns->n, 1);
	cr_expect_str_eq(u.netns->ifs[0].name, l.peer);
	cr_expect_eq(u.netns->ifs[0].host_ifindex, l.host_ifindex);
	/* No default route, no eth0: the first link that is not loopback. */
	cr_expect_eq(u.netns->default_idx, 0);
	cr_expect(u.netns->ifs[0].has_stats && u.netns->ifs[0].has_proto);
	/* The pod row shows its container's namespace. */
	snprintf(rel, sizeof(rel), "%.500s/%.500s", th_cgroot(), pod);
	usage_of(c, rel, &u);
	cr_assert_not_null(u.netns);
	ino = u.netns->ino;
	cr_expect_not_null(podnet__ns(collector__podnet(c), ino));
	/* At least: a tally running beside the test (another test, an agent) may be there too. */
	cr_expect_geq(nh_tcx_prog_count(l.host_ifindex, false), 1);
	cr_expect_geq(nh_tcx_prog_count(l.host_ifindex, true), 1);
	cr_expect(net__is_attached(collector__net(c), l.host_ifindex));
	cr_expect_eq(net__read_if(collector__net(c), l.host_ifindex, &ic), 0);

	/* The veth goes while tracked: detached, its counters dropped, the pod keeps no stats. */
	nh_link_delete(&l);
	cr_assert_eq(collector__collect(c), 0);
	usage_of(c, cg, &u);
	cr_assert_not_null(u.netns);
	cr_expect_not(u.netns->ifs[0].has_stats, "stats of a gone device");
	cr_expect_eq(net__read_if(collector__net(c), l.host_ifindex, &ic), -ENOENT);
	cr_expect_not(net__is_attached(collector__net(c), l.host_ifindex));

	/* The pod goes: its namespace entry with it, and no fd stays open. */
	th_child_stop(pid);
	cr_assert_eq(th_cgroup_remove(cg), 0);
	cr_assert_eq(collector__collect(c), 0);
	cr_expect_null(podnet__ns(collector__podnet(c), ino), "the gone pod's namespace is kept");
	cr_expect_eq(fds_on_netns(ino), 0, "an fd on the gone pod's namespace is open");
	collector__free(c);
}

/* A process in the host's namespace: host network, no interfaces of its own. */
Test(podnet, host_network_container)
{
	static const char id[] = "ffff0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	const char *top = th_test_cgroup("hostnet") + strlen(th_cgroot()) + 1;
	struct collector *c;
	struct cg_usage u;
	char rel[512];
	const char *cg;

	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, id);
	cg = th_cgroup_create(rel);
	nh_sleeper_start(cg, NULL);
	c = collector__new(th_cgroot(), NULL);
	cr_assert_not_null(c, "collector: %s", strerror(errno));
	cr_assert_eq(collector__collect(c), 0);
	usage_of(c, cg, &u);
	cr_expect(u.host_network);
	cr_expect_null(u.netns);
	cr_expect_null(u.netns_why);
	collector__free(c);
}

/* One tick as the collector takes it, the namespaces of ino[n] in use. */
static void tick(struct podnet *p, const uint64_t *ino, int n)
{
	cr_assert_eq(podnet__begin(p), 0);
	for (int i = 0; i < n; i++)
		podnet__ref(p, ino[i]);
	cr_assert_eq(podnet__end(p), 0);
}

/*
 * Ticks until every attach and detach job is picked up. Bounded, but loosely: this podnet
 * attaches to every pod veth of the host, other tests' too (~17 ms each).
 */
static void tick_until_settled(struct podnet *p, struct tally_net *net, const uint64_t *ino, int n)
{
	for (int tries = 0; tries < 1500; tries++) {
		tick(p, ino, n);
		if (!net__pending(net) && !podnet__attaching(p))
			return;
		th_sleep_ms(20);
	}
	cr_assert_fail("%u tc jobs still pending after 30 s", net__pending(net));
}

#define BG_PODS 20

/*
 * The agent's mode: the first tick over 20 new pods queues their attaches and returns without
 * one done (the worker is held, so a tick that waited would never return); their interfaces
 * are listed with link counters and without a protocol breakdown, not a zero one. Once the
 * worker has run, every veth is attached, and what tc counted sums to the kernel's link
 * counters (tc was on before the first packet: these veths carry only the test's traffic).
 */
Test(podnet, background_attach_never_holds_the_tick)
{
	struct nh_link l[BG_PODS];
	const char *cg[BG_PODS];
	uint64_t ino[BG_PODS];
	struct tally_net *net;
	struct podnet *p;

	net = net__open(th_cgroot(), NULL);
	cr_assert_not_null(net, "net__open: %s", strerror(errno));
	for (int i = 0; i < BG_PODS; i++) {
		char name[32], tag[3] = {'b', (char)('a' + i), '\0'};

		snprintf(name, sizeof(name), "podnet-bg%d", i);
		nh_link_create(&l[i], name, tag);
		cg[i] = th_test_cgroup(name);
		nh_sleeper_start(cg[i], l[i].ns);
	}
	p = podnet__new(net);
	cr_assert_not_null(p, "podnet__new: %s", strerror(errno));
	podnet__background(p);
	net__hold(net, true);
	cr_assert_eq(podnet__begin(p), 0);
	for (int i = 0; i < BG_PODS; i++) {
		cr_assert_eq(podnet__lookup(p, cg[i], &ino[i]), 0);
		cr_assert_neq(ino[i], 0, "pod %d found in the host's namespace", i);
	}
	cr_assert_eq(podnet__end(p), 0);
	/* At least: other veths on the host (another test's) are attached too. */
	cr_expect_geq(podnet__attaching(p), BG_PODS);
	cr_expect_geq(net__pending(net), BG_PODS);
	for (int i = 0; i < BG_PODS; i++) {
		const struct podnet_ns *ns = podnet__ns(p, ino[i]);

		cr_assert(ns && ns->n == 1, "pod %d: its interface is not listed", i);
		cr_expect_eq(ns->ifs[0].host_ifindex, l[i].host_ifindex);
		cr_expect(ns->ifs[0].has_stats, "pod %d: no link counters while tc is queued", i);
		cr_expect_not(ns->ifs[0].has_proto, "pod %d: a breakdown before tc was attached",
			      i);
		cr_expect_not(net__is_attached(net, l[i].host_ifindex));
	}

	net__hold(net, false);
	tick_until_settled(p, net, ino, BG_PODS);
	for (int i = 0; i < BG_PODS; i++) {
		cr_expect(net__is_attached(net, l[i].host_ifindex), "veth %s", l[i].host);
		cr_expect_geq(nh_tcx_prog_count(l[i].host_ifindex, false), 1);
		cr_expect_geq(nh_tcx_prog_count(l[i].host_ifindex, true), 1);
		nh_ping(&l[i], cg[i], 3, 100 + 10 * i);
	}
	tick(p, ino, BG_PODS);
	for (int i = 0; i < BG_PODS; i++) {
		const struct podnet_if *f = &podnet__ns(p, ino[i])->ifs[0];
		uint64_t sum[NET_IF_DIRS][2] = {};
		struct nh_stats host;

		cr_assert(f->has_stats && f->has_proto, "pod %d: no breakdown once attached", i);
		for (int d = 0; d < NET_IF_DIRS; d++)
			for (int k = 0; k < NET_IF_PROTOS; k++) {
				sum[d][0] += f->proto.bytes[d][k];
				sum[d][1] += f->proto.packets[d][k];
			}
		/* The independent truth: sysfs, from the host's side (its rx is the pod's tx). */
		nh_stats_read(l[i].host, &host);
		cr_expect_gt(host.rx_packets, 0);
		cr_expect_eq(sum[PODNET_TX][0], host.rx_bytes, "pod %d tx bytes", i);
		cr_expect_eq(sum[PODNET_TX][1], host.rx_packets, "pod %d tx packets", i);
		cr_expect_eq(sum[PODNET_RX][0], host.tx_bytes, "pod %d rx bytes", i);
		cr_expect_eq(sum[PODNET_RX][1], host.tx_packets, "pod %d rx packets", i);
		cr_expect_eq(f->stats.tx_bytes, host.rx_bytes);
	}
	podnet__free(p);
	net__free(net); /* joins the worker, then detaches */
}

/* A tcx link (BPF_LINK_TYPE_TCX, 11: newer than these headers). */
static bool is_tcx_link(int fd, const char *target, void *ctx)
{
	struct bpf_link_info info = {};
	uint32_t len = sizeof(info);

	if (strcmp(target, "anon_inode:bpf_link"))
		return false;
	return !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == 11;
}

/* Open fds of this process on tcx links. */
static int tcx_link_fds(void)
{
	return count_fds(is_tcx_link, NULL);
}

/* Whether a pin tcx-<ifindex>-<in|eg> is in any net-* directory under pins. */
static bool tcx_pinned(int ifindex)
{
	char pattern[256];
	glob_t g = {};
	bool found;

	snprintf(pattern, sizeof(pattern), "%s/net-*/tcx-%d-*", pins, ifindex);
	found = !glob(pattern, 0, NULL, &g);
	globfree(&g);
	return found;
}

static bool in_if_net(struct tally_net *net, int ifindex)
{
	static uint64_t vals[TALLY_NET_MAX_CPUS * sizeof(struct net_if_counter) / 8];
	uint32_t key = ifindex;

	return !bpf_map_lookup_elem(bpf_map__fd(net__skel(net)->maps.if_net), &key, vals);
}

/*
 * Pinned, in the background: veth a goes while its attach is still queued (the worker is
 * held, and a tick sees a's RTM_DELLINK meanwhile), veth b once its attach is done but before
 * a tick picked it up. Neither leaves a pin, an if_net entry or an open link fd; c, which
 * stays, has all three.
 */
Test(podnet, veth_gone_while_its_attach_is_queued_leaves_nothing)
{
	struct net_opts o = {.pin_root = pins};
	struct nh_link a, b, c;
	struct tally_net *net;
	struct podnet *p;

	nh_link_create(&a, "podnet-qa", "qa");
	nh_link_create(&b, "podnet-qb", "qb");
	nh_link_create(&c, "podnet-qc", "qc");
	net = net__open(th_cgroot(), &o);
	cr_assert_not_null(net, "net__open pinned under %s: %s", pins, strerror(errno));
	p = podnet__new(net);
	cr_assert_not_null(p, "podnet__new: %s", strerror(errno));
	podnet__background(p);
	net__hold(net, true);
	tick(p, NULL, 0);
	cr_assert_geq(podnet__attaching(p), 3);
	nh_link_delete(&a);
	tick(p, NULL, 0); /* a's RTM_DELLINK, its attach still queued */
	net__hold(net, false);
	/* b's attach done, not picked up: no tick in between. */
	for (int tries = 0; tries < 1500 && !net__is_attached(net, b.host_ifindex); tries++)
		th_sleep_ms(20);
	cr_assert(net__is_attached(net, b.host_ifindex), "b never attached");
	cr_expect(tcx_pinned(b.host_ifindex));
	nh_link_delete(&b);
	tick_until_settled(p, net, NULL, 0);

	cr_expect_not(net__is_attached(net, a.host_ifindex));
	cr_expect_not(net__is_attached(net, b.host_ifindex));
	cr_expect_not(tcx_pinned(a.host_ifindex), "a pin of veth a, gone while queued");
	cr_expect_not(tcx_pinned(b.host_ifindex), "a pin of veth b, gone before pickup");
	cr_expect_not(in_if_net(net, a.host_ifindex), "if_net has veth a");
	cr_expect_not(in_if_net(net, b.host_ifindex), "if_net has veth b");
	cr_expect(net__is_attached(net, c.host_ifindex));
	cr_expect(tcx_pinned(c.host_ifindex));
	cr_expect(in_if_net(net, c.host_ifindex));
	/* Two link fds per attached device (other veths on the host too), none for a or b. */
	cr_expect_eq(tcx_link_fds(), 2 * (int)podnet__attached(p), "%d tcx link fds, %zu devices",
		     tcx_link_fds(), podnet__attached(p));
	podnet__free(p);
	net__free(net);
	cr_expect_eq(tcx_link_fds(), 0, "net__free left a tcx link fd open");
}

/*
 * A background attach that tally or the kernel refuses (here: if_net holds one device and two
 * veths want it) is counted, with its device and reason, for the agent's log and
 * tally_net_tc_attach_failures_total; nobody waits for the job to hear it otherwise. It is
 * tried again at the next tick, so the count goes on growing while the cause lasts.
 */
Test(podnet, failed_background_attach_is_counted_and_retried)
{
	struct net_opts o = {.max_ifaces = 1};
	int ifindex = 0, err = 0, tries;
	struct nh_link a, b;
	struct tally_net *net;
	struct podnet *p;
	uint64_t n = 0, again = 0;

	nh_link_create(&a, "podnet-fa", "fa");
	nh_link_create(&b, "podnet-fb", "fb");
	net = net__open(th_cgroot(), &o);
	cr_assert_not_null(net, "net__open: %s", strerror(errno));
	p = podnet__new(net);
	cr_assert_not_null(p, "podnet__new: %s", strerror(errno));
	podnet__background(p);
	cr_expect_eq(podnet__attach_failures(p, &ifindex, &err), 0);
	cr_expect(ifindex == 0 && err == 0, "a failure before any attach: %d %d", ifindex, err);
	for (tries = 0; tries < 1500 && !(n = podnet__attach_failures(p, &ifindex, &err));
	     tries++) {
		tick(p, NULL, 0);
		th_sleep_ms(20);
	}
	cr_assert_geq(n, 1, "no attach failed with room for one device of two");
	cr_expect_eq(err, -E2BIG, "the failure: %s", strerror(-err));
	cr_expect_gt(ifindex, 0);
	cr_expect_not(net__is_attached(net, ifindex), "the device that failed is attached");
	cr_expect_eq(podnet__attached(p), 1, "%zu devices attached", podnet__attached(p));
	for (tries = 0; tries < 1500 && (again = podnet__attach_failures(p, &ifindex, &err)) == n;
	     tries++) {
		tick(p, NULL, 0);
		th_sleep_ms(20);
	}
	cr_expect_gt(again, n, "not tried again");
	podnet__free(p);
	net__free(net);
}
