// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Restarts of `tally agent` over its pins: counts made while no agent ran are kept (kill -9,
 * then a new agent), a new layout replaces the pinned programs without leaving the old ones
 * behind, what went while no agent ran is pruned at start-up, and --cleanup removes it all.
 * The truth is the kernel's: cpu.stat, the veth's link counters, the exact datagrams sent,
 * and the BPF objects the kernel still holds. Every test pins under its own bpffs directory,
 * removed in .fini; bpffs is unmounted again if the suite mounted it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <linux/magic.h>

#include "agent_helpers.h"
#include "disk_helpers.h"
#include "helpers.h"
#include "net_helpers.h"
#include "pin.h"

static char pins[128];
static bool mounted_bpffs;

static void init(void)
{
	struct statfs st;

	snprintf(pins, sizeof(pins), "/sys/fs/bpf/tally-test-%d", (int)getpid());
	mounted_bpffs = statfs("/sys/fs/bpf", &st) || (uint64_t)st.f_type != BPF_FS_MAGIC;
}

static void fini(void)
{
	ah_cleanup(); /* agents first: they hold the pins */
	pin__remove_all(pins);
	nh_cleanup();
	th_cleanup();
	dh_cleanup();
	if (mounted_bpffs)
		umount2("/sys/fs/bpf", MNT_DETACH | UMOUNT_NOFOLLOW);
}

TestSuite(restart, .init = init, .fini = fini, .timeout = 300);

static void agent_pinned(struct agent *a, const char *extra)
{
	char args[512];

	snprintf(args, sizeof(args), "--period 200ms --bpffs %s %s", pins, extra ? extra : "");
	agent_start(a, args);
}

/* A pod with one container in its own netns (a veth to the host): paths into cg and pod. */
struct pod {
	struct nh_link l;
	const char *cg, *srv;
	char uid[40], cid[65];
};

static void pod_create(struct pod *p, const char *name, const char *tag)
{
	const char *top = th_test_cgroup(name) + strlen(th_cgroot()) + 1;
	char rel[512];

	snprintf(p->uid, sizeof(p->uid), "0f0e0d0c-0b0a-4998-8776-%012x", (unsigned)getpid());
	snprintf(p->cid, sizeof(p->cid),
		 "eeee%08x0ddba11f00dfacade5eedc0de0123456789abcdef0123456789a", (unsigned)getpid());
	nh_link_create(&p->l, name, tag);
	snprintf(rel, sizeof(rel), "%s/kubepods/pod%s/%s", top, p->uid, p->cid);
	p->cg = th_cgroup_create(rel);
	snprintf(rel, sizeof(rel), "%s/server", top);
	p->srv = th_cgroup_create(rel);
	nh_sleeper_start(p->cg, p->l.ns);
}

/* What an agent serves for the pod: its container's CPU and sockets, the interface's protocols. */
struct seen {
	unsigned long long cpu_ns, sock_tx_bytes, sock_tx_packets;
	unsigned long long if_rx_bytes, if_tx_bytes; /* sum over protocols (tc), pod's side */
	bool listed;
};

static struct seen pod_seen(const struct agent *a, const struct pod *p)
{
	char script[2048], out[4096];
	struct resp rc, rp;
	struct seen s = {};
	char *both;
	int ret;

	http_get(a, "/v1/containers", NULL, &rc);
	http_get(a, "/v1/pods", NULL, &rp);
	cr_assert_eq(rc.status, 200, "%s", rc.raw);
	cr_assert_eq(rp.status, 200, "%s", rp.raw);
	cr_assert(asprintf(&both, "%s\n%s", rc.body, rp.body) > 0);
	snprintf(script, sizeof(script),
		 "import json,sys\n"
		 "c, p = [json.loads(x) for x in sys.stdin.read().split('\\n', 1)]\n"
		 "c = [x for x in c if x['id'] == '%s']\n"
		 "p = [x for x in p if x['uid'] == '%s']\n"
		 "if not c or not p or not p[0]['network'].get('interfaces') or"
		 " p[0]['network']['interfaces'][0]['protocols'] is None:\n"
		 "    print(0, 0, 0, 0, 0, 0); sys.exit(0)\n"
		 "k = c[0]['network']['sockets']\n"
		 "q = p[0]['network']['interfaces'][0]['protocols']\n"
		 "print(1, c[0]['cpu']['usage_core_nano_seconds'], k['tx_bytes'], k['tx_packets'],"
		 " sum(q[x]['rx_bytes'] for x in q), sum(q[x]['tx_bytes'] for x in q))\n",
		 p->cid, p->uid);
	ret = py(script, both, strlen(both), out, sizeof(out));
	free(both);
	resp_free(&rc);
	resp_free(&rp);
	cr_assert_eq(ret, 0, "python3: %s", out);
	cr_assert_eq(sscanf(out, "%d %llu %llu %llu %llu %llu", &ret, &s.cpu_ns, &s.sock_tx_bytes,
			    &s.sock_tx_packets, &s.if_rx_bytes, &s.if_tx_bytes),
		     6, "%s", out);
	s.listed = ret == 1;
	return s;
}

/*
 * The pod as the agent serves it, once it is listed with its interface and that interface's
 * protocols (tc is attached in the background: null until then). Bounded wait.
 */
static struct seen pod_wait(const struct agent *a, const struct pod *p)
{
	for (int i = 0; i < 100; i++) {
		struct seen s = pod_seen(a, p);

		if (s.listed)
			return s;
		th_sleep_ms(100);
	}
	cr_assert_fail("the agent never listed pod %s with its interface", p->uid);
	return (struct seen){};
}

/* Wait until the next collection has certainly happened (the period is 200 ms). */
static void settle(void)
{
	th_sleep_ms(700);
}

static void udp(const struct pod *p, unsigned count)
{
	struct nh_udp_client cli = {.cg = p->cg, .count = count, .size = 1000, .ack = 100};

	nh_udp_exchange(&p->l, p->srv, &cli, 1);
}

static bool exists(const char *path)
{
	struct stat st;

	return !stat(path, &st);
}

Test(restart, kill9_loses_no_counts)
{
	unsigned long long tol;
	struct seen s1, s2;
	struct nh_stats host;
	struct agent a, b;
	struct pod p;
	uint64_t before, after;
	pid_t burner;

	pod_create(&p, "restart-kill9", "rk");
	burner = th_burner_start(p.cg, -1);
	agent_pinned(&a, NULL);
	pod_wait(&a, &p);
	cr_assert_geq(nh_tcx_prog_count(p.l.host_ifindex, false), 1, "tally's tc on %s", p.l.host);
	udp(&p, 50);
	settle();
	s1 = pod_seen(&a, &p);
	cr_expect_eq(s1.sock_tx_bytes, 50 * 1028ull, "before the kill: %llu", s1.sock_tx_bytes);

	/* No agent: the pinned programs count on, and the burner burns on. */
	agent_stop(&a, SIGKILL, 5000);
	agent_kill(&a);
	udp(&p, 70);
	th_sleep_ms(500);

	agent_pinned(&b, NULL);
	cr_expect_eq(count_lines(&b, "continuing the BPF counters pinned under"), 1,
		     "the new agent did not take the pins over");
	s2 = pod_wait(&b, &p);
	before = th_cpustat_ns(p.cg);
	settle();
	s2 = pod_seen(&b, &p);
	after = th_cpustat_ns(p.cg);
	nh_stats_read(p.l.host, &host);
	/* Exact: every datagram sent while no agent ran is in the count. */
	cr_expect_eq(s2.sock_tx_bytes, 120 * 1028ull, "sockets: %llu, sent %llu",
		     s2.sock_tx_bytes, 120 * 1028ull);
	cr_expect_eq(s2.sock_tx_packets, 120);
	/* tc counted since the first agent attached, before any traffic: all of the link's. */
	cr_expect_eq(s2.if_tx_bytes, host.rx_bytes, "pod tx by protocol %llu, host veth rx %llu",
		     s2.if_tx_bytes, (unsigned long long)host.rx_bytes);
	cr_expect_eq(s2.if_rx_bytes, host.tx_bytes, "pod rx by protocol %llu, host veth tx %llu",
		     s2.if_rx_bytes, (unsigned long long)host.tx_bytes);
	/* CPU: a counter, never behind the last agent's value, and the kernel's within bounds. */
	cr_expect_geq(s2.cpu_ns, s1.cpu_ns, "CPU went back: %llu after %llu", s2.cpu_ns, s1.cpu_ns);
	tol = after / 100 > 20000000ull ? after / 100 : 20000000ull;
	cr_expect(s2.cpu_ns + tol >= before - 300000000ull && s2.cpu_ns <= after + tol,
		  "CPU %.3f s, kernel %.3f..%.3f s", s2.cpu_ns / 1e9, before / 1e9, after / 1e9);
	th_child_stop(burner);
}

/* The ids of the programs the links pinned as dir/<glob> run. */
static int pinned_ids(const char *dir, const char *glob, uint32_t *ids, int max)
{
	char cmd[512], out[4096];
	int n = 0;

	snprintf(cmd, sizeof(cmd),
		 "for f in %s/%s; do [ -e \"$f\" ] && bpftool -j link show pinned "
		 "\"$f\"; done | python3 -c 'import json,sys\n"
		 "for l in sys.stdin: print(json.loads(l)[\"prog_id\"])'",
		 dir, glob);
	cr_assert_eq(th_run(cmd, out, sizeof(out)), 0, "%s", out);
	for (char *s = strtok(out, "\n"); s && n < max; s = strtok(NULL, "\n"))
		ids[n++] = (uint32_t)strtoul(s, NULL, 10);
	return n;
}

/* The ids of the programs the pinned links of dir run. */
static int pinned_prog_ids(const char *dir, uint32_t *ids, int max)
{
	int n = pinned_ids(dir, "*/link-*", ids, max);

	return n + pinned_ids(dir, "*/tcx-*", ids + n, max - n);
}

/* Whether program id is attached through tcx to one direction of a device. */
static bool tcx_attached(int ifindex, bool egress, uint32_t id)
{
	uint32_t ids[64], cnt = 64, flags = 0;
	/* BPF_TCX_INGRESS / BPF_TCX_EGRESS: newer than this libbpf's headers. */
	int err = bpf_prog_query(ifindex, (enum bpf_attach_type)(egress ? 47 : 46), 0, &flags, ids,
				 &cnt);

	cr_assert_eq(err, 0, "tcx query of ifindex %d: %s", ifindex, strerror(-err));
	for (uint32_t i = 0; i < cnt; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static bool prog_loaded(uint32_t id)
{
	int fd = bpf_prog_get_fd_by_id(id);

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/*
 * Whether the program is still loaded after a bounded wait: an unpinned link is released once
 * bpffs frees the inode, after an RCU grace period, and its program after that.
 */
static bool prog_stays(uint32_t id)
{
	for (int i = 0; i < 50 && prog_loaded(id); i++)
		th_sleep_ms(100);
	return prog_loaded(id);
}



Test(restart, new_layout_replaces_the_pinned_programs)
{
	uint32_t old[32], now[32];
	struct nh_stats host;
	struct agent a, b;
	struct seen s;
	struct pod p;
	int n_old, n_now;

	pod_create(&p, "restart-layout", "rl");
	agent_pinned(&a, NULL);
	pod_wait(&a, &p);
	agent_stop(&a, SIGTERM, 30000);
	agent_kill(&a);
	n_old = pinned_prog_ids(pins, old, 32);
	/*
	 * sched_switch, sched_process_exit, cgroup_rmdir (x2), cgroup_mkdir, cgroup_rename,
	 * cgroup_skb (x2), the pod veth's tcx (x2), others'
	 */
	cr_assert_geq(n_old, 10, "pinned links: %d", n_old);

	/* Another map size is another layout: what a new build with other maps looks like. */
	agent_pinned(&b, "--max-cgroups 20000");
	cr_expect_eq(count_lines(&b, "replaced the CPU programs pinned in"), 1);
	cr_expect_eq(count_lines(&b, "replaced the network programs pinned in"), 1);
	s = pod_wait(&b, &p);
	for (int i = 0; i < n_old; i++)
		cr_expect(!prog_stays(old[i]), "program %u of the old layout is still loaded",
			  old[i]);
	/* The same programs, pinned anew (tcx pins: per veth, and others' pods come and go). */
	n_now = pinned_ids(pins, "*/link-*", now, 32);
	cr_expect_eq(n_now, pinned_ids(pins, "*/link-*", old, 32), "pinned links now: %d",
		     n_now);
	cr_expect_eq(n_now, 8,
		     "sched_switch, sched_process_exit, cgroup_rmdir (x2), cgroup_mkdir, "
		     "cgroup_rename, cgroup_skb (x2): %d",
		     n_now);
	/*
	 * The veth's tcx links were moved to the new programs (the old ones are gone, above);
	 * other tallies on this node may have their own there, so only ours are looked at.
	 */
	{
		char glob[64];
		uint32_t id;

		for (int dir = 0; dir < 2; dir++) {
			snprintf(glob, sizeof(glob), "*/tcx-%d-%s", p.l.host_ifindex,
				 dir ? "eg" : "in");
			cr_assert_eq(pinned_ids(pins, glob, &id, 1), 1, "no pin %s", glob);
			cr_expect(tcx_attached(p.l.host_ifindex, dir, id),
				  "pinned program %u is not on %s", id, p.l.host);
		}
	}
	/* And they count into the new maps: traffic from now on, exactly. */
	nh_stats_read(p.l.host, &host);
	s = pod_seen(&b, &p);
	udp(&p, 30);
	settle();
	{
		struct nh_stats after, d;
		struct seen s2 = pod_seen(&b, &p);

		nh_stats_read(p.l.host, &after);
		d = nh_stats_delta(&after, &host);
		cr_expect_eq(s2.if_tx_bytes - s.if_tx_bytes, d.rx_bytes,
			     "pod tx by protocol grew %llu, host veth rx %llu",
			     s2.if_tx_bytes - s.if_tx_bytes, (unsigned long long)d.rx_bytes);
	}
}

Test(restart, what_went_while_down_is_pruned)
{
	char path[512], name[64], cmdout[256];
	struct agent a, b;
	struct pod p;
	uint64_t cgid;
	int ifindex, fd;

	pod_create(&p, "restart-prune", "rp");
	cgid = th_cgroup_id(p.cg);
	ifindex = p.l.host_ifindex;
	agent_pinned(&a, NULL);
	pod_wait(&a, &p);
	agent_stop(&a, SIGTERM, 30000);
	agent_kill(&a);

	/* The pod goes while no agent runs: its veth and its cgroup. */
	nh_link_delete(&p.l);
	th_cleanup(); /* stops the sleeper, removes the cgroups */

	agent_pinned(&b, NULL);
	settle();
	snprintf(name, sizeof(name), "tcx-%d-in", ifindex);
	snprintf(path, sizeof(path), "find %s -name %s | grep -c .", pins, name);
	cr_expect_neq(th_run(path, cmdout, sizeof(cmdout)), 0, "the pin %s of a deleted veth is still there",
		      name);
	/* Map entries: none for the veth, none for the cgroup (counters or seed). */
	snprintf(path, sizeof(path), "ls -d %s/net-*/if_net %s/cpu-*/cg_cpu %s/cpu-*/cg_seed", pins,
		 pins, pins);
	{
		char out[1024];
		char *m[3];
		int k = 0;

		cr_assert_eq(th_run(path, out, sizeof(out)), 0, "%s", out);
		for (char *s = strtok(out, "\n"); s && k < 3; s = strtok(NULL, "\n"))
			m[k++] = s;
		cr_assert_eq(k, 3, "maps: %s", out);
		fd = bpf_obj_get(m[0]);
		cr_assert_geq(fd, 0, "%s: %s", m[0], strerror(errno));
		{
			uint32_t key = ifindex;
			uint64_t vals[256 * 8];

			cr_expect(bpf_map_lookup_elem(fd, &key, vals) && errno == ENOENT,
				  "if_net still has veth %d", ifindex);
		}
		close(fd);
		for (int i = 1; i < 3; i++) {
			uint64_t vals[256 * 2];

			fd = bpf_obj_get(m[i]);
			cr_assert_geq(fd, 0, "%s: %s", m[i], strerror(errno));
			cr_expect(bpf_map_lookup_elem(fd, &cgid, vals) && errno == ENOENT,
				  "%s still has cgroup %llu", m[i], (unsigned long long)cgid);
			close(fd);
		}
	}
	agent_stop(&b, SIGTERM, 30000);
}

Test(restart, sigterm_keeps_and_cleanup_removes)
{
	uint32_t ids[32];
	struct agent a;
	char cmd[512], out[1024];
	int n, rc;

	agent_pinned(&a, NULL);
	agent_stop(&a, SIGTERM, 30000);
	agent_kill(&a);
	n = pinned_prog_ids(pins, ids, 32);
	cr_assert_geq(n, 5, "pinned links after SIGTERM: %d", n);
	for (int i = 0; i < n; i++)
		cr_expect(prog_loaded(ids[i]), "program %u went with the agent", ids[i]);
	snprintf(cmd, sizeof(cmd), TALLY " agent --cleanup --bpffs %s 2>&1", pins);
	rc = th_run(cmd, out, sizeof(out));
	cr_expect_eq(rc, 0, "%s: %s", cmd, out);
	cr_expect(!exists(pins), "%s is still there", pins);
	for (int i = 0; i < n; i++)
		cr_expect(!prog_stays(ids[i]), "program %u is still loaded after --cleanup", ids[i]);
	/* Twice is fine: nothing to do. */
	cr_expect_eq(th_run(cmd, out, sizeof(out)), 0, "%s", out);
}

/* The container's writable layer as the agent serves it: false when it has none yet. */
static bool layer_seen(const struct agent *a, const char *id, bool *verified, uint64_t *bytes,
		       uint64_t *inodes)
{
	char script[1024], out[1024];
	unsigned long long b = 0, n = 0;
	struct resp r;
	int v = 0, listed = 0, rc;

	http_get(a, "/v1/containers", NULL, &r);
	cr_assert_eq(r.status, 200, "%s", r.raw);
	snprintf(script, sizeof(script),
		 "import json,sys\n"
		 "c = [x for x in json.load(sys.stdin) if x['id'] == '%s']\n"
		 "w = c[0]['writable_layer'] if c else None\n"
		 "print(1 if w else 0, int(bool(w and w['verified'])), w['used_bytes'] if w else 0,"
		 " w['inodes_used'] if w else 0)\n",
		 id);
	rc = py(script, r.body, r.body_len, out, sizeof(out));
	resp_free(&r);
	cr_assert_eq(rc, 0, "python3: %s", out);
	cr_assert_eq(sscanf(out, "%d %d %llu %llu", &listed, &v, &b, &n), 4, "%s", out);
	*verified = v;
	*bytes = b;
	*inodes = n;
	return listed;
}

/* Wait (bounded) until the layer is verified; its numbers. */
static void layer_wait_verified(const struct agent *a, const char *id, uint64_t *bytes,
				uint64_t *inodes)
{
	bool verified = false;

	for (int i = 0; i < 300; i++) {
		if (layer_seen(a, id, &verified, bytes, inodes) && verified)
			return;
		th_sleep_ms(100);
	}
	cr_assert_fail("the layer of %s was never verified", id);
}

Test(restart, layer_served_from_checkpoint_then_verified)
{
	const char *top = th_test_cgroup("restart-layer") + strlen(th_cgroot()) + 1;
	uint64_t bytes, inodes, du_bytes;
	char rel[512], id[65], args[512];
	const char *cg, *state;
	struct dh_overlay o;
	struct agent a, b;
	bool verified;

	uint64_t t0 = now_ns(CLOCK_MONOTONIC), t1, t2, t3;

	dh_overlay_prepare(&o, "restart-layer");
	/*
	 * Enough names for the walk to take a while (some 0.3 s here): the restart's window.
	 * Hard links, not files: after the other suites' mass deletes, this machine's ext4 took
	 * up to 40 s to allocate 40,000 inodes (see create_names in test_disk.c).
	 */
	for (int d = 0; d < 200; d++) {
		dh_mkdir(dh_path("%s/d%d", o.upper, d));
		dh_write(dh_path("%s/d%d/f0", o.upper, d), 0);
		for (int f = 1; f < 200; f++)
			cr_assert_eq(link(dh_path("%s/d%d/f0", o.upper, d),
					  dh_path("%s/d%d/f%d", o.upper, d, f)),
				     0, "link: %s", strerror(errno));
	}
	dh_overlay_mount(&o);
	t1 = now_ns(CLOCK_MONOTONIC);
	snprintf(id, sizeof(id), "1a7e%08x0ddba11f00dfacade5eedc0de0123456789abcdef0123456789a",
		 (unsigned)getpid());
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, id);
	cg = th_cgroup_create(rel);
	dh_container_start(cg, o.merged);
	state = dh_path("%s/state", dh_tmpdir("restart-state"));
	snprintf(args, sizeof(args), "--bpffs none --state-dir %s", state);

	agent_start(&a, args);
	layer_wait_verified(&a, id, &bytes, &inodes);
	t2 = now_ns(CLOCK_MONOTONIC);
	cr_expect_eq(bytes, dh_du_bytes(o.upper));
	cr_expect_eq(inodes, dh_du_inodes(o.upper));
	/* A clean stop writes the checkpoint. */
	agent_stop(&a, SIGTERM, 30000);
	agent_kill(&a);

	/* Changed while no agent ran: the checkpoint is now stale, the restart must notice. */
	dh_write(dh_path("%s/written-while-down", o.upper), 1 << 20);
	du_bytes = dh_du_bytes(o.upper);
	cr_assert_neq(du_bytes, bytes);

	agent_start(&b, args);
	{
		uint64_t first_bytes, first_inodes;

		cr_assert(layer_seen(&b, id, &verified, &first_bytes, &first_inodes),
			  "no writable layer right after the restart");
		cr_expect(!verified, "walked already: the test's tree is too small to see the window");
		if (!verified) {
			cr_expect_eq(first_bytes, bytes, "served %llu, checkpoint had %llu",
				     (unsigned long long)first_bytes, (unsigned long long)bytes);
			cr_expect_eq(first_inodes, inodes);
		}
	}
	layer_wait_verified(&b, id, &bytes, &inodes);
	t3 = now_ns(CLOCK_MONOTONIC);
	cr_log_info("restart/layer: tree made in %.1f s, verified %.1f s after the first start, "
		    "%.1f s after the restart began",
		    (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9);
	cr_expect_eq(bytes, dh_du_bytes(o.upper), "verified %llu, du %llu",
		     (unsigned long long)bytes, (unsigned long long)dh_du_bytes(o.upper));
	cr_expect_eq(inodes, dh_du_inodes(o.upper));
	agent_stop(&b, SIGTERM, 30000);
}
