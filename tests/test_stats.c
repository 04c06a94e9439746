// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The tally binary end to end: `tally stats --json` on real cgroups named as runtimes name
 * them, parsed by an independent JSON parser (python3), and the one-line errors when root,
 * cgroup v2 or a valid argument is missing.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "disk_helpers.h"
#include "helpers.h"
#include "net_helpers.h"

#define TALLY "build/tally"

static void fini(void)
{
	th_cleanup();
	dh_cleanup();
	nh_cleanup();
}

TestSuite(stats, .fini = fini, .timeout = 60);

Test(stats, json_document_matches_kernel)
{
	static const char id[] = "4b1d0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	const char *top = th_test_cgroup("stats");
	char rel[512], cmd[2048], out[4096];
	unsigned long long usage, cores, cgid, before, after;
	char runtime[64], gotid[128], path[256];
	const char *cg;
	int rc;

	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top + strlen(th_cgroot()) + 1, id);
	cg = th_cgroup_create(rel);
	th_burner_start(cg, -1);
	/* The container exists before tally starts: its CPU comes from the cpu.stat seed plus
	 * what BPF counts over the interval. */
	before = th_cpustat_ns(cg);
	snprintf(cmd, sizeof(cmd),
		 TALLY
		 " stats --standalone --json --interval 400ms | python3 -c '"
		 "import json,sys\n"
		 "d = json.load(sys.stdin)\n"
		 "assert isinstance(d[\"timestamp_ns\"], int)\n"
		 "c = [x for x in d[\"containers\"] if x[\"cgroup_id\"] == %llu]\n"
		 "assert len(c) == 1, d\n"
		 "c = c[0]\n"
		 "print(c[\"cpu\"][\"usage_core_nano_seconds\"], c[\"cpu\"][\"usage_nano_cores\"],"
		 " c[\"cgroup_id\"], c[\"runtime\"], c[\"id\"], c[\"cgroup\"], c[\"pod\"])'",
		 (unsigned long long)th_cgroup_id(cg));
	rc = th_run(cmd, out, sizeof(out));
	after = th_cpustat_ns(cg);
	cr_assert_eq(rc, 0, "tally stats --json | python3 failed (%d): %s", rc, out);
	cr_assert_eq(sscanf(out, "%llu %llu %llu %63s %127s %255s", &usage, &cores, &cgid, runtime,
			    gotid, path),
		     6, "unexpected output: %s", out);
	cr_expect_str_eq(runtime, "docker");
	cr_expect_str_eq(gotid, id);
	cr_expect_str_eq(path, cg + strlen(th_cgroot()));
	cr_expect(strstr(out, " None\n") != NULL, "a container outside a pod has pod null: %s",
		  out);
	cr_expect(usage >= before && usage <= after + 10000000ull,
		  "usage %.3f s outside the kernel's %.3f..%.3f s", usage / 1e9, before / 1e9,
		  after / 1e9);
	/* One busy loop: between a quarter core (a loaded 2-CPU VM) and one core. */
	cr_expect(cores > 250000000ull && cores <= 1050000000ull, "%.3f cores", cores / 1e9);
}

Test(stats, table_lists_containers_and_all)
{
	static const char id[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	const char *top = th_test_cgroup("table");
	char rel[512], row_end[512], out[1 << 16];

	snprintf(rel, sizeof(rel), "%s/cri-containerd-%s.scope", top + strlen(th_cgroot()) + 1, id);
	th_cgroup_create(rel);
	cr_assert_eq(th_run(TALLY " stats --standalone --interval 100ms", out, sizeof(out)), 0,
		     "%s", out);
	cr_expect(strncmp(out, "CONTAINER", 9) == 0, "header: %s", out);
	cr_expect(strstr(out, "0123456789ab  ") != NULL, "short id missing: %s", out);
	cr_expect(strstr(out, "containerd") != NULL);
	/* The test's top cgroup is no container: its own row ends with its path. */
	snprintf(row_end, sizeof(row_end), "%s\n", top + strlen(th_cgroot()));
	cr_expect(strstr(out, row_end) == NULL, "non-container without --all: %s", out);
	cr_assert_eq(th_run(TALLY " stats --standalone --all --interval 100ms", out, sizeof(out)),
		     0, "%s", out);
	cr_expect(strstr(out, row_end) != NULL, "--all lists every cgroup: %s", out);
}

Test(stats, needs_root)
{
	char out[4096];
	int rc;

	rc = th_run("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
		    "--bounding-set=-all " TALLY " stats --standalone 2>&1",
		    out, sizeof(out));
	cr_expect_eq(rc, 1, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "root") != NULL, "says what is missing: %s", out);
	cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
	/* In JSON mode the error is JSON, on stdout. */
	rc = th_run("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
		    "--bounding-set=-all " TALLY
		    " stats --standalone --json 2>/dev/null | python3 -c '"
		    "import json,sys; print(json.load(sys.stdin)[\"error\"])'",
		    out, sizeof(out));
	cr_expect_eq(rc, 0, "JSON error not parsed: %s", out);
	cr_expect(strstr(out, "root") != NULL, "%s", out);
}

Test(stats, needs_cgroup2)
{
	char cmd[PATH_MAX + 128], out[4096];
	int rc;

	/* A private mount namespace without the cgroup2 mount. */
	snprintf(cmd, sizeof(cmd),
		 "unshare -m sh -c 'umount -l %s && " TALLY " stats --standalone' 2>&1",
		 th_cgroot());
	rc = th_run(cmd, out, sizeof(out));
	cr_expect_eq(rc, 1, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "no cgroup v2") != NULL, "%s", out);
	cr_expect(strstr(out, "mount -t cgroup2") != NULL, "says how to fix it: %s", out);
}

/*
 * Run from a pod with a cgroup namespace of its own (the runtime's cgroup2 mount shows only
 * the pod's subtree), tally counts the host's tree it also sees: the test's own cgroup, above
 * the namespace's root, is listed by its host path.
 */
Test(stats, counts_the_host_tree_from_a_cgroup_namespace)
{
	const char *top = th_test_cgroup("stats-cgroupns"), *ns, *dir;
	char rel[512], cmd[4096], out[4096];
	int rc;

	snprintf(rel, sizeof(rel), "%s/pod", top + strlen(th_cgroot()) + 1);
	ns = th_cgroup_create(rel);
	dir = dh_tmpdir("stats-cgroupns");
	snprintf(cmd, sizeof(cmd),
		 "sh -c 'echo $$ > %s/cgroup.procs && exec unshare -C -m sh -c \"mount -t cgroup2 "
		 "none %s && " TALLY " stats --standalone --all --json --interval 100ms; umount "
		 "%s\"' | python3 -c 'import json,sys\n"
		 "d = json.load(sys.stdin)\n"
		 "p = [c[\"cgroup\"] for c in d[\"cgroups\"]]\n"
		 "assert \"%s\" in p, p\n'",
		 ns, dir, dir, top + strlen(th_cgroot()));
	rc = th_run(cmd, out, sizeof(out));
	cr_expect_eq(rc, 0, "%s", out);
}

Test(stats, bad_arguments_and_help)
{
	char out[8192];

	cr_expect_eq(th_run(TALLY " stats --interval abc 2>&1", out, sizeof(out)), 2);
	cr_expect(strstr(out, "invalid interval 'abc'") != NULL, "%s", out);
	cr_expect_eq(th_run(TALLY " stats --interval 0 2>&1", out, sizeof(out)), 2);
	cr_expect_eq(th_run(TALLY " stats --max-cgroups 0 2>&1", out, sizeof(out)), 2);
	cr_expect_eq(th_run(TALLY " stats extra 2>&1", out, sizeof(out)), 2);
	cr_expect_eq(th_run(TALLY " nosuchcommand 2>&1", out, sizeof(out)), 2);
	cr_expect(strstr(out, "unknown command") != NULL, "%s", out);
	cr_expect_eq(th_run(TALLY " stats --help", out, sizeof(out)), 0);
	cr_expect(strstr(out, "Usage: tally stats") != NULL, "%s", out);
	cr_expect_eq(th_run(TALLY " --help", out, sizeof(out)), 0);
	cr_expect(strstr(out, "stats") != NULL, "%s", out);
	cr_expect_eq(th_run(TALLY " version", out, sizeof(out)), 0);
}

struct rootfs_child {
	const char *root; /* chroot here first (NULL: stay on the host's root) */
	int ready;	  /* write end of a pipe: one byte once the file is written */
};

/* A container process: its root is the overlay, and it writes through it. */
static void container_main(void *arg)
{
	struct rootfs_child *c = arg;
	int fd;

	if (c->root && (chroot(c->root) || chdir("/")))
		_exit(1);
	if (c->root) {
		fd = open("/written-by-container", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, c, 1) != 1 || ftruncate(fd, 300000) || fsync(fd))
			_exit(1);
		close(fd);
	}
	if (write(c->ready, "x", 1) != 1)
		_exit(1);
	pause();
}

static pid_t start_container(const char *cg, const char *root)
{
	struct rootfs_child c = {.root = root};
	int p[2];
	char b;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	c.ready = p[1];
	pid = th_child_start(cg, container_main, &c);
	close(p[1]);
	cr_assert_eq(read(p[0], &b, 1), 1, "the container process failed to start");
	close(p[0]);
	return pid;
}

Test(stats, writable_layer_of_overlay_root_matches_du)
{
	static const char id1[] =
	    "aaaa0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	static const char id2[] =
	    "bbbb0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	const char *top = th_test_cgroup("layer") + strlen(th_cgroot()) + 1;
	char rel[512], cmd[2048], out[8192], upper[4096], why[256];
	unsigned long long bytes, inodes, nimage, ibytes, iinodes;
	struct dh_overlay o;
	const char *cg1, *cg2;
	int rc;

	dh_overlay_prepare(&o, "stats-layer");
	dh_write(dh_path("%s/in-image", o.lower), 5000);
	dh_overlay_mount(&o);
	dh_write(dh_path("%s/app.log", o.merged), 70000);
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, id1);
	cg1 = th_cgroup_create(rel);
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, id2);
	cg2 = th_cgroup_create(rel);
	start_container(cg1, o.merged);
	start_container(cg2, NULL);
	snprintf(cmd, sizeof(cmd),
		 TALLY " stats --standalone --json --interval 100ms | python3 -c '"
		       "import json,sys\n"
		       "d = json.load(sys.stdin)\n"
		       "c = {x[\"id\"]: x for x in d[\"containers\"]}\n"
		       "w = c[\"%s\"][\"writable_layer\"]\n"
		       "assert w[\"timestamp_ns\"] > 0, w\n"
		       "i = c[\"%s\"][\"image_layers\"]\n"
		       "print(w[\"upperdir\"], w[\"used_bytes\"], w[\"inodes_used\"],"
		       " i[\"layers\"], i[\"used_bytes\"], i[\"inodes_used\"])\n"
		       "assert c[\"%s\"][\"writable_layer\"] is None\n"
		       "print(c[\"%s\"][\"writable_layer_error\"])'",
		 id1, id1, id2, id2);
	rc = th_run(cmd, out, sizeof(out));
	cr_assert_eq(rc, 0, "tally stats --json | python3 failed (%d): %s", rc, out);
	cr_assert_eq(sscanf(out, "%4095s %llu %llu %llu %llu %llu %255[^\n]", upper, &bytes,
			    &inodes, &nimage, &ibytes, &iinodes, why),
		     7, "unexpected output: %s", out);
	cr_expect_eq(nimage, 1);
	cr_expect_eq(ibytes, dh_du_bytes(o.lower), "image used_bytes %llu, du says %llu", ibytes,
		     (unsigned long long)dh_du_bytes(o.lower));
	cr_expect_eq(iinodes, dh_du_inodes(o.lower));
	cr_expect_str_eq(upper, o.upper);
	cr_expect_eq(bytes, dh_du_bytes(o.upper), "used_bytes %llu, du says %llu", bytes,
		     (unsigned long long)dh_du_bytes(o.upper));
	cr_expect_eq(inodes, dh_du_inodes(o.upper), "inodes_used %llu, du says %llu", inodes,
		     (unsigned long long)dh_du_inodes(o.upper));
	cr_expect(bytes >= 70000 + 4096, "the container's files are counted: %llu", bytes);
	cr_expect(strstr(why, "not overlay") != NULL, "reason for no layer: %s", why);
}

/*
 * Wait (bounded) until tally logged its first sample: from then on its programs count, tc
 * included. tc on the device alone would not do: another tally (a test running at the same
 * time) may have attached there first.
 */
static bool wait_first_sample(const char *log)
{
	char line[4096];

	/* -v also lets libbpf's load log through: look at every line. */
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(log, "r");
		bool found = false;

		while (f && !found && fgets(line, sizeof(line), f))
			found = strstr(line, "first sample taken") != NULL;
		if (f)
			fclose(f);
		if (found)
			return true;
		th_sleep_ms(10);
	}
	return false;
}

/*
 * A pod with its own network namespace (a veth pair, as a CNI makes), a container in it and a
 * host-network container: the pod's interface from the pod's side equals the kernel's link
 * counters of the host end, its protocol breakdown sums to them, and the container's socket
 * traffic is exactly the datagrams it exchanged.
 */
Test(stats, pod_network_matches_link_counters)
{
	static const char uid[] = "0f0e0d0c-0b0a-4998-8776-655443322110";
	static const char cid[] =
	    "cccc0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	static const char hid[] =
	    "dddd0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	/* A container of the pod with no process (yet): no namespace to tell, the pod still has. */
	static const char eid[] =
	    "eeee0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	const char *top = th_test_cgroup("podnet") + strlen(th_cgroot()) + 1;
	char rel[512], cmd[4096], out[8192], ifname[64], defname[64], log[64];
	unsigned long long v[12], sock[4];
	bool ok;
	const char *cg, *hcg, *srv;
	struct nh_udp_client cli;
	struct nh_stats host;
	struct nh_link l;
	FILE *tally;
	int rc;

	nh_link_create(&l, "stats-podnet", "sp");
	snprintf(rel, sizeof(rel), "%s/kubepods/pod%s/%s", top, uid, eid);
	th_cgroup_create(rel);
	snprintf(rel, sizeof(rel), "%s/kubepods/pod%s/%s", top, uid, cid);
	cg = th_cgroup_create(rel);
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, hid);
	hcg = th_cgroup_create(rel);
	snprintf(rel, sizeof(rel), "%s/server", top);
	srv = th_cgroup_create(rel);
	nh_sleeper_start(cg, l.ns);
	nh_sleeper_start(hcg, NULL);
	snprintf(log, sizeof(log), "/tmp/tally-test-stats-%d.log", (int)getpid());
	snprintf(cmd, sizeof(cmd),
		 TALLY " -v stats --standalone --json --interval 3s 2>%s | python3 -c '"
		       "import json,sys\n"
		       "d = json.load(sys.stdin)\n"
		       "p = [x for x in d[\"pods\"] if x[\"uid\"] == \"%s\" and"
		       " x[\"cgroup\"].startswith(\"/%s/\")][0]\n"
		       /* A pod lists every container with its uid: a concurrent run's too. */
		       "assert {\"%s\", \"%s\"} <= set(p[\"containers\"]), p\n"
		       "p = p[\"network\"]\n"
		       "assert p[\"host_network\"] is False, p\n"
		       "assert len(p[\"interfaces\"]) == 1, p\n"
		       "i = p[\"interfaces\"][0]\n"
		       "q = i[\"protocols\"]\n"
		       "s = sum(q[k][f] for k in q for f in (\"rx_bytes\",)), "
		       "sum(q[k][f] for k in q for f in (\"rx_packets\",)), "
		       "sum(q[k][f] for k in q for f in (\"tx_bytes\",)), "
		       "sum(q[k][f] for k in q for f in (\"tx_packets\",))\n"
		       "c = {x[\"id\"]: x for x in d[\"containers\"]}\n"
		       "k = c[\"%s\"][\"network\"][\"sockets\"]\n"
		       "assert \"interfaces\" not in c[\"%s\"][\"network\"]\n"
		       "h = c[\"%s\"][\"network\"]\n"
		       "assert h[\"host_network\"] is True and h[\"interfaces\"] == [], h\n"
		       "print(i[\"name\"], p[\"default_interface\"][\"name\"], i[\"rx_bytes\"],"
		       " i[\"rx_packets\"], i[\"tx_bytes\"], i[\"tx_packets\"], *s,"
		       " q[\"udp\"][\"tx_packets\"], q[\"udp\"][\"rx_packets\"],"
		       " k[\"rx_bytes\"], k[\"rx_packets\"], k[\"tx_bytes\"], k[\"tx_packets\"])'",
		 log, uid, top, cid, eid, cid, cid, hid);
	tally = popen(cmd, "r");
	cr_assert_not_null(tally);
	/* Traffic only once tc counts: from then on, tc and the link counters see the same. */
	ok = wait_first_sample(log);
	if (!ok)
		pclose(tally);
	unlink(log);
	cr_assert(ok, "tally never logged its first sample");
	cr_expect_geq(nh_tcx_prog_count(l.host_ifindex, false), 1, "tally's tc on %s", l.host);
	cli = (struct nh_udp_client){.cg = cg, .count = 200, .size = 1000, .ack = 100};
	nh_udp_exchange(&l, srv, &cli, 1);
	out[0] = '\0';
	if (!fgets(out, sizeof(out), tally))
		out[0] = '\0';
	rc = pclose(tally);
	cr_assert_eq(rc, 0, "tally stats --json | python3 failed (%d): %s", rc, out);
	nh_stats_read(l.host, &host);
	cr_assert_eq(sscanf(out,
			    "%63s %63s %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
			    "%llu %llu %llu",
			    ifname, defname, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
			    &v[8], &v[9], &sock[0], &sock[1], &sock[2], &sock[3]),
		     16, "unexpected output: %s", out);
	cr_expect_str_eq(ifname, l.peer);
	cr_expect_str_eq(defname, l.peer);
	/* From the pod's side: what the host end received, the pod sent. */
	cr_expect_eq(v[0], host.tx_bytes, "pod rx_bytes %llu, host tx %llu", v[0],
		     (unsigned long long)host.tx_bytes);
	cr_expect_eq(v[1], host.tx_packets);
	cr_expect_eq(v[2], host.rx_bytes, "pod tx_bytes %llu, host rx %llu", v[2],
		     (unsigned long long)host.rx_bytes);
	cr_expect_eq(v[3], host.rx_packets);
	/* Protocols sum to the interface's totals. */
	cr_expect_eq(v[4], v[0], "protocols rx_bytes %llu, interface %llu", v[4], v[0]);
	cr_expect_eq(v[5], v[1]);
	cr_expect_eq(v[6], v[2], "protocols tx_bytes %llu, interface %llu", v[6], v[2]);
	cr_expect_eq(v[7], v[3]);
	cr_expect_eq(v[8], 200, "udp tx_packets %llu", v[8]);
	cr_expect_eq(v[9], 200, "udp rx_packets %llu", v[9]);
	/* The container's sockets: 200 datagrams each way, L3 bytes (20 IP + 8 UDP). */
	cr_expect_eq(sock[3], 200, "socket tx_packets %llu", sock[3]);
	cr_expect_eq(sock[2], 200 * (1000 + 28), "socket tx_bytes %llu", sock[2]);
	cr_expect_eq(sock[1], 200, "socket rx_packets %llu", sock[1]);
	cr_expect_eq(sock[0], 200 * (100 + 28), "socket rx_bytes %llu", sock[0]);
}

/*
 * python3 on `tally stats --json`, then "=====", then the table of another run. argv: the
 * standalone container's id, then uid:id,id,... per pod. Checks that each pod lists exactly its
 * containers (in document order, as their own "pod" fields say), that the table puts each pod's
 * containers right under it, and that a document carries one timestamp: one collection.
 */
static const char pod_list_py[] =
    "import json, sys\n"
    "alone = sys.argv[1]\n"
    "pods = {a.split(':')[0]: a.split(':')[1].split(',') for a in sys.argv[2:]}\n"
    "doc, table = sys.stdin.read().split('\\n=====\\n')\n"
    "d = json.loads(doc)\n"
    "ts = {d['timestamp_ns']}\n"
    "for x in d['containers'] + d['pods']:\n"
    "    ts |= {x['cpu']['timestamp_ns'], x['network']['timestamp_ns']}\n"
    "assert len(ts) == 1, ('one collection, one timestamp', ts)\n"
    "byid = {c['id']: c for c in d['containers']}\n"
    "assert byid[alone]['pod'] is None, byid[alone]\n"
    "for uid, ids in pods.items():\n"
    "    p = [x for x in d['pods'] if x['uid'] == uid]\n"
    "    assert len(p) == 1, (uid, p)\n"
    "    listed = p[0]['containers']\n"
    "    assert listed == [c['id'] for c in d['containers'] if c['pod'] == uid], (uid, listed)\n"
    "    assert sorted(listed) == sorted(ids), (uid, listed, ids)\n"
    "rows = [l.split() for l in table.splitlines()[1:] if l.strip()]\n"
    "for uid, ids in pods.items():\n"
    "    k = [i for i, r in enumerate(rows) if r[:3] == ['-', uid, 'pod']]\n"
    "    assert len(k) == 1, (uid, k)\n"
    "    under = rows[k[0] + 1:k[0] + 1 + len(ids)]\n"
    "    assert sorted(r[0] for r in under) == sorted(i[:12] for i in ids), (uid, under)\n"
    "    assert all(r[1] == uid for r in under), (uid, under)\n"
    "    rest = rows[k[0] + 1 + len(ids):]\n"
    "    assert not rest or rest[0][1] != uid, (uid, rest[0])\n"
    "assert [r for r in rows if r[0] == alone[:12] and r[1] == '-'], 'no row for ' + alone\n"
    "print('ok')\n";

Test(stats, pods_list_their_containers_under_one_timestamp)
{
	enum { PODS = 4, MAX_PER_POD = 4 };
	const char *top = th_test_cgroup("podlist") + strlen(th_cgroot()) + 1;
	char uid[PODS][40], id[PODS][MAX_PER_POD][65], alone[65], rel[512], args[4096] = "";
	char script[128], cmd[8192], out[4096];
	unsigned pid = (unsigned)getpid();
	size_t len = 0;
	FILE *f;
	int rc;

	/* Unique on a machine where other tests' pods come and go meanwhile. */
	for (int p = 0; p < PODS; p++) {
		snprintf(uid[p], sizeof(uid[p]), "%08x-%04x-4000-8000-000000000000", pid, p);
		snprintf(rel, sizeof(rel), "%s/kubepods/pod%s", top, uid[p]);
		th_cgroup_create(rel);
	}
	/* Pod p gets p + 1 containers, created round-robin so that neither their cgroup ids nor
	 * their creation order groups them by pod. */
	for (int k = 0; k < MAX_PER_POD; k++) {
		for (int p = PODS - 1; p >= k; p--) {
			snprintf(id[p][k], sizeof(id[p][k]), "%08x%02x%02x%052d", pid, p, k, 0);
			snprintf(rel, sizeof(rel), "%s/kubepods/pod%s/%s", top, uid[p], id[p][k]);
			th_cgroup_create(rel);
		}
	}
	snprintf(alone, sizeof(alone), "%08xffff%052d", pid, 0);
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, alone);
	th_cgroup_create(rel);
	len += (size_t)snprintf(args + len, sizeof(args) - len, "%s", alone);
	for (int p = 0; p < PODS; p++) {
		len += (size_t)snprintf(args + len, sizeof(args) - len, " %s:", uid[p]);
		for (int k = 0; k <= p; k++)
			len += (size_t)snprintf(args + len, sizeof(args) - len, "%s%s",
						k ? "," : "", id[p][k]);
	}
	cr_assert_lt(len, sizeof(args));

	snprintf(script, sizeof(script), "/dev/shm/tally-test-stats-podlist-%u.py", pid);
	f = fopen(script, "w");
	cr_assert_not_null(f);
	fputs(pod_list_py, f);
	cr_assert_eq(fclose(f), 0);
	snprintf(cmd, sizeof(cmd),
		 "{ " TALLY " stats --standalone --json --interval 100ms && echo ===== && " TALLY
		 " stats --standalone --interval 100ms; } | python3 %s %s 2>&1",
		 script, args);
	rc = th_run(cmd, out, sizeof(out));
	unlink(script);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect_str_eq(out, "ok\n");
}
