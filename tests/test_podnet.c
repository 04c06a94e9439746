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
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "collect.h"
#include "helpers.h"
#include "net_helpers.h"

static void fini(void)
{
	th_cleanup();
	nh_cleanup();
}

TestSuite(podnet, .fini = fini, .timeout = 60);

/* Open fds of this process that refer to the network namespace of inode ino. */
static int fds_on_netns(uint64_t ino)
{
	char want[64], path[300], got[64];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	snprintf(want, sizeof(want), "net:[%llu]", (unsigned long long)ino);
	while ((e = readdir(d))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, got, sizeof(got) - 1);
		if (len <= 0)
			continue;
		got[len] = '\0';
		n += !strcmp(got, want);
	}
	closedir(d);
	return n;
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
