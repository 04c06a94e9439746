// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tally on a real containerd node, end to end. A containerd 1.6 of the test's own (Debian's
 * packages, runc with its cgroupfs driver, the overlayfs snapshotter) runs three containers
 * of an image built here from busybox-static: a CPU burner, a writer that fills its writable
 * layer, and a pod whose netns and veth come from the CNI bridge plugin and which sends and
 * receives TCP through it. `tally agent` and `tally stats --json` are compared with truths
 * that owe nothing to tally: the kernel's cpu.stat of each container's cgroup, `ctr snapshots
 * usage` and du(1) of the snapshot's upper and lower dirs, and the link counters of the pod's
 * host-side veth (sysfs). JSON is parsed with python3.
 *
 * On a hybrid host (this one) runc's cgroupfs driver makes /<namespace>/<id> in every v1
 * hierarchy and in the cgroup2 mount at /sys/fs/cgroup/unified; tally reads the latter. No
 * containerd option is needed for that: ctr's default cgroupsPath is /<namespace>/<id>, and
 * the systemd driver is not used (there is no systemd here).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent_helpers.h"
#include "containerd_helpers.h"
#include "disk_helpers.h"
#include "helpers.h"
#include "net_helpers.h"

#define UP	 300000 /* bytes the pod sends */
#define DOWN	 120000 /* bytes the host sends back */
#define ETH_HLEN 14

static pid_t server = -1;

static void fini(void)
{
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
		server = -1;
	}
	ah_cleanup();
	ctrd_cleanup();
	th_cleanup();
}

/* containerd's start, the image import and the agent's first collection take a few seconds. */
TestSuite(containerd, .fini = fini, .timeout = 240);

/* ---- a container's JSON, flattened by python3 into "dotted.key value" lines ------------- */

struct flat {
	char buf[1 << 16]; /* starts with '\n', so every key is found as "\nkey " */
};

static const char flatten_py[] =
    "import json,sys\n"
    "def walk(p, v):\n"
    "    if isinstance(v, dict):\n"
    "        for k, x in v.items(): walk(p + [k], x)\n"
    "    elif isinstance(v, list):\n"
    "        for k, x in enumerate(v): walk(p + [str(k)], x)\n"
    "    elif v is None: print('.'.join(p), 'null')\n"
    "    elif isinstance(v, bool): print('.'.join(p), str(v).lower())\n"
    "    else: print('.'.join(p), v)\n"
    "walk([], json.load(sys.stdin))\n";

static void flatten(const char *json, size_t len, struct flat *f)
{
	f->buf[0] = '\n';
	cr_assert_eq(py(flatten_py, json, len, f->buf + 1, sizeof(f->buf) - 1), 0, "python3: %s",
		     f->buf + 1);
}

/* The value of key, or NULL; in one of 8 rotating buffers. */
static const char *flat_get(const struct flat *f, const char *key)
{
	static char vals[8][512];
	static int next;
	char needle[256];
	const char *p;
	char *v;

	snprintf(needle, sizeof(needle), "\n%s ", key);
	p = strstr(f->buf, needle);
	if (!p)
		return NULL;
	p += strlen(needle);
	v = vals[next++ % 8];
	snprintf(v, sizeof(vals[0]), "%.*s", (int)strcspn(p, "\n"), p);
	return v;
}

static uint64_t flat_u64(const struct flat *f, const char *key)
{
	const char *v = flat_get(f, key);
	char *end;
	unsigned long long n;

	cr_assert(v && *v >= '0' && *v <= '9', "%s is %s in:%s", key, v ? v : "absent", f->buf);
	n = strtoull(v, &end, 10);
	cr_assert_eq(*end, '\0', "%s is %s", key, v);
	return n;
}

/* tc's packets of one protocol on the pod's interface, both ways; 0 before tc is attached. */
/*
 * The pod's sockets in one direction ("tx" or "rx") against the host veth's other direction:
 * the same packets, and their L3 bytes plus an Ethernet header each.
 */
static void expect_sockets_on_link(const struct flat *f, const char *dir, uint64_t packets,
				   uint64_t bytes)
{
	char kb[64], kp[64];

	snprintf(kb, sizeof(kb), "network.sockets.%s_bytes", dir);
	snprintf(kp, sizeof(kp), "network.sockets.%s_packets", dir);
	cr_expect_eq(flat_u64(f, kp), packets, "pod %s %s packets, host veth %llu", dir,
		     flat_get(f, kp), (unsigned long long)packets);
	cr_expect_eq(flat_u64(f, kb) + ETH_HLEN * flat_u64(f, kp), bytes,
		     "pod %s %s bytes %s packets, host veth %llu bytes", dir, flat_get(f, kb),
		     flat_get(f, kp), (unsigned long long)bytes);
}

/*
 * tc's TCP count on the pod interface in one direction against the host veth's other one: at
 * most as many skbs as link packets (GSO), and every segment beyond an skb's first adds hdr
 * bytes of headers on the link.
 */
static void expect_tc_on_link(const struct flat *f, const char *dir, uint64_t packets,
			      uint64_t bytes, uint64_t hdr)
{
	char kb[96], kp[96];
	uint64_t p, b;

	snprintf(kb, sizeof(kb), "network.default_interface.protocols.tcp.%s_bytes", dir);
	snprintf(kp, sizeof(kp), "network.default_interface.protocols.tcp.%s_packets", dir);
	p = flat_u64(f, kp);
	b = flat_u64(f, kb);
	cr_expect(p > 0 && p <= packets, "tc %s %llu skbs, link %llu", dir, (unsigned long long)p,
		  (unsigned long long)packets);
	cr_expect_eq(b + (packets - p) * hdr, bytes,
		     "tc %s %llu bytes in %llu skbs, link %llu in %llu", dir, (unsigned long long)b,
		     (unsigned long long)p, (unsigned long long)bytes, (unsigned long long)packets);
}

static uint64_t proto_packets(const struct flat *f, const char *proto)
{
	uint64_t n = 0;

	for (int dir = 0; dir < 2; dir++) {
		const char *k = dh_path("network.default_interface.protocols.%s.%s_packets", proto,
					dir ? "tx" : "rx");

		if (flat_get(f, k))
			n += flat_u64(f, k);
	}
	return n;
}

/* GET /v1/containers/ID: true and the container flattened, false on 404. */
static bool fetch(const struct agent *a, const char *id, struct flat *f)
{
	char path[256];
	struct resp r;
	bool found;

	snprintf(path, sizeof(path), "/v1/containers/%s", id);
	http_get(a, path, NULL, &r);
	cr_assert(r.status == 200 || r.status == 404, "GET %s: %d %s", path, r.status, r.raw);
	found = r.status == 200;
	if (found)
		flatten(r.body, r.body_len, f);
	resp_free(&r);
	return found;
}

/*
 * Poll (bounded) until the agent serves the container from a collection whose ts_key is later
 * than since, and, with key, where key's value is want.
 */
static void fetch_after(const struct agent *a, const char *id, const char *ts_key, uint64_t since,
			const char *key, const char *want, struct flat *f)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 15000000000ull;

	do {
		const char *ts, *v;

		if (fetch(a, id, f) && (ts = flat_get(f, ts_key)) &&
		    strtoull(ts, NULL, 10) > since &&
		    (!key || ((v = flat_get(f, key)) && !strcmp(v, want))))
			return;
		th_sleep_ms(50);
	} while (now_ns(CLOCK_MONOTONIC) < deadline);
	cr_assert_fail("container %s: no collection after %llu with %s = %s in 15 s; last:%s", id,
		       (unsigned long long)since, key ? key : ts_key, key ? want : "(later)",
		       f->buf);
}

/* ---- truths ---------------------------------------------------------------------------- */

/* tally's CPU within 10 ms or 1% of the kernel's before..after (the agent suite's bound). */
static void expect_cpu_within(const char *id, uint64_t usage, uint64_t before, uint64_t after)
{
	uint64_t tol = after / 100 > 10000000ull ? after / 100 : 10000000ull;

	cr_expect(usage + tol >= before && usage <= after + tol,
		  "%s: usage %.3f s outside the kernel's %.3f..%.3f s (tolerance %.3f s)", id,
		  usage / 1e9, before / 1e9, after / 1e9, tol / 1e9);
}

static const char *cg_of(const char *id)
{
	return dh_path("%s/" CTRD_NS "/%s", th_cgroot(), id);
}

/* The container's cpu.stat read before and after a collection of the agent's. */
static void expect_cpu(const struct agent *a, const char *id)
{
	uint64_t before, after, since;
	struct flat f;

	before = th_cpustat_ns(cg_of(id));
	since = now_ns(CLOCK_REALTIME);
	fetch_after(a, id, "cpu.timestamp_ns", since, NULL, NULL, &f);
	after = th_cpustat_ns(cg_of(id));
	cr_log_info("%s: tally %.6f s, cpu.stat %.6f..%.6f s", id,
		    flat_u64(&f, "cpu.usage_core_nano_seconds") / 1e9, before / 1e9, after / 1e9);
	expect_cpu_within(id, flat_u64(&f, "cpu.usage_core_nano_seconds"), before, after);
}

/*
 * The writable layer as containerd and du(1) count it, and the image layer as du counts it,
 * against a collection made after since (the container wrote nothing since).
 */
static void expect_layers(const struct ctrd *c, const struct agent *a, const char *id,
			  uint64_t since)
{
	char upper[512], lower[512], out[4096], parent[256], want[300];
	uint64_t bytes, inodes, du_bytes, du_inodes, pb, pi;
	const char *p;
	struct flat f;

	ctrd_snapshot_dirs(c, id, upper, lower, sizeof(upper));
	cr_assert_null(strchr(lower, ':'), "one image layer: %s", lower);
	ctrd_snapshot_usage(c, id, &bytes, &inodes);
	du_bytes = dh_du_bytes(upper);
	du_inodes = dh_du_inodes(upper);
	/* Two truths first: containerd's own number is du's. */
	cr_expect_eq(bytes, du_bytes, "%s: ctr snapshots usage %llu bytes, du %llu", id,
		     (unsigned long long)bytes, (unsigned long long)du_bytes);
	cr_expect_eq(inodes, du_inodes, "%s: ctr snapshots usage %llu inodes, du %llu", id,
		     (unsigned long long)inodes, (unsigned long long)du_inodes);

	fetch_after(a, id, "writable_layer.timestamp_ns", since, NULL, NULL, &f);
	cr_expect_str_eq(flat_get(&f, "writable_layer.upperdir"), upper, "%s", id);
	cr_expect_eq(flat_u64(&f, "writable_layer.used_bytes"), du_bytes, "%s: tally %llu, du %llu",
		     id, (unsigned long long)flat_u64(&f, "writable_layer.used_bytes"),
		     (unsigned long long)du_bytes);
	cr_expect_eq(flat_u64(&f, "writable_layer.inodes_used"), du_inodes,
		     "%s: tally %llu inodes, du %llu", id,
		     (unsigned long long)flat_u64(&f, "writable_layer.inodes_used"),
		     (unsigned long long)du_inodes);

	/* The image layer: du of the lowerdir, and containerd's usage of that committed snapshot.
	 */
	cr_assert_eq(ctrd_ctr(c, out, sizeof(out), "snapshots ls"), 0, "%s", out);
	snprintf(want, sizeof(want), "\n%s ", id);
	p = strstr(out, want);
	cr_assert(p && sscanf(p + strlen(want), "%255s", parent) == 1, "no parent of %s: %s", id,
		  out);
	ctrd_snapshot_usage(c, parent, &pb, &pi);
	cr_expect_eq(flat_u64(&f, "image_layers.layers"), 1);
	cr_expect_eq(flat_u64(&f, "image_layers.used_bytes"), dh_du_bytes(lower), "%s", id);
	cr_expect_eq(flat_u64(&f, "image_layers.inodes_used"), dh_du_inodes(lower), "%s", id);
	cr_expect_eq(flat_u64(&f, "image_layers.used_bytes"), pb, "%s: ctr usage of %s", id,
		     parent);
	cr_expect_eq(flat_u64(&f, "image_layers.inodes_used"), pi, "%s: ctr usage of %s", id,
		     parent);
}

/* Who the container is: named by its cgroup, which the kernel says its process is in. */
static void expect_identity(const struct agent *a, const char *id, pid_t pid, struct flat *f)
{
	char path[64], line[512], want[300];
	struct stat st;
	FILE *pf;
	bool in = false;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	pf = fopen(path, "re");
	cr_assert_not_null(pf, "%s: %s", path, strerror(errno));
	snprintf(want, sizeof(want), "0::/" CTRD_NS "/%s\n", id);
	while (fgets(line, sizeof(line), pf))
		in |= !strcmp(line, want);
	fclose(pf);
	cr_assert(in, "process %d of %s is not in /" CTRD_NS "/%s", (int)pid, id, id);
	cr_assert_eq(stat(cg_of(id), &st), 0);

	cr_expect_str_eq(flat_get(f, "id"), id);
	cr_expect_str_eq(flat_get(f, "runtime"), "containerd", "%s", id);
	cr_expect_str_eq(flat_get(f, "pod"), "null", "%s", id);
	cr_expect_str_eq(flat_get(f, "cgroup"), dh_path("/" CTRD_NS "/%s", id), "%s", id);
	cr_expect_eq(flat_u64(f, "cgroup_id"), (uint64_t)st.st_ino, "%s", id);
}

/* The pod's interface as tally serves it, and the host veth's counters flipped to its side. */
static void expect_interface(const struct flat *f, const struct nh_stats *host)
{
	static const char *const keys[] = {"rx_bytes", "rx_packets", "tx_bytes", "tx_packets"};
	const uint64_t want[] = {host->tx_bytes, host->tx_packets, host->rx_bytes,
				 host->rx_packets};

	cr_expect_str_eq(flat_get(f, "network.host_network"), "false");
	cr_expect_str_eq(flat_get(f, "network.default_interface.name"), "eth0");
	cr_expect_str_eq(flat_get(f, "network.interfaces.0.name"), "eth0");
	cr_expect_null(flat_get(f, "network.interfaces.1.name"), "one interface");
	for (int i = 0; i < 4; i++) {
		char key[128];

		snprintf(key, sizeof(key), "network.default_interface.%s", keys[i]);
		cr_expect_eq(flat_u64(f, key), want[i], "%s: tally %llu, the host veth %llu", key,
			     (unsigned long long)flat_u64(f, key), (unsigned long long)want[i]);
	}
	cr_expect_eq(flat_u64(f, "network.default_interface.rx_errors"), 0);
	cr_expect_eq(flat_u64(f, "network.default_interface.tx_dropped"), 0);
}

/*
 * A collection served between two equal reads of the host veth's counters (nothing else
 * crosses it, so they are equal unless a packet was still in flight: then again).
 */
static void fetch_stable(const struct agent *a, const char *id, const char *host, uint64_t since,
			 struct flat *f, struct nh_stats *s)
{
	struct nh_stats s2;

	for (int i = 0; i < 20; i++) {
		nh_stats_read(host, s);
		fetch_after(a, id, "network.timestamp_ns", since, NULL, NULL, f);
		nh_stats_read(host, &s2);
		if (!memcmp(s, &s2, sizeof(s2)))
			return;
		since = now_ns(CLOCK_REALTIME);
	}
	cr_assert_fail("the counters of %s never stood still", host);
}

/*
 * `tally stats --json` (a fresh load, two samples): the containers as the agent has them; the
 * CPU of containers born before it comes from its cpu.stat seed plus BPF, the writable layers
 * from one walk each.
 */
static void expect_stats_command(const struct ctrd *c, const char *const ids[], int n)
{
	/* The document can be large (every container of the node): python3 reads the file. */
	static const char script[] = "import json,sys\n"
				     "d = json.load(open('%s'))\n"
				     "by = {c['id']: c for c in d['containers']}\n"
				     "for i in %s:\n"
				     "    c = by[i]\n"
				     "    w = c['writable_layer']\n"
				     "    print(c['runtime'], c['cpu']['usage_core_nano_seconds'],"
				     " w['used_bytes'], w['inodes_used'])\n";
	char list[256] = "[", py_script[1024], res[4096], upper[512], lower[512], rt[32];
	char json[128], cmd[256], out[4096];
	uint64_t before[4], after[4];
	const char *line = res;
	int rc;

	cr_assert_leq(n, 4);
	/* on tmpfs: not a write on the filesystem whose upper dirs the agent watches */
	snprintf(json, sizeof(json), "/dev/shm/tally-test-ctrd-%d-stats.json", (int)getpid());
	snprintf(cmd, sizeof(cmd), TALLY " stats --standalone --json --interval 200ms 2>&1 >%s", json);
	for (int i = 0; i < n; i++) {
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "'%s',", ids[i]);
		before[i] = th_cpustat_ns(cg_of(ids[i]));
	}
	strcat(list, "]");
	rc = th_run(cmd, out, sizeof(out));
	for (int i = 0; i < n; i++)
		after[i] = th_cpustat_ns(cg_of(ids[i]));
	snprintf(py_script, sizeof(py_script), script, json, list);
	cr_assert_eq(rc, 0, "%s: status %d: %s", cmd, rc, out);
	rc = py(py_script, "", 0, res, sizeof(res));
	unlink(json);
	cr_assert_eq(rc, 0, "%s", res);
	for (int i = 0; i < n; i++) {
		unsigned long long usage, bytes, inodes;

		cr_assert(line &&
			      sscanf(line, "%31s %llu %llu %llu", rt, &usage, &bytes, &inodes) == 4,
			  "%s", res);
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
		ctrd_snapshot_dirs(c, ids[i], upper, lower, sizeof(upper));
		cr_expect_str_eq(rt, "containerd", "tally stats: %s", ids[i]);
		cr_log_info("%s: tally stats %.6f s, cpu.stat %.6f..%.6f s", ids[i], usage / 1e9,
			    before[i] / 1e9, after[i] / 1e9);
		expect_cpu_within(ids[i], usage, before[i], after[i]);
		cr_expect_eq(bytes, dh_du_bytes(upper), "tally stats: %s %llu bytes, du %llu",
			     ids[i], bytes, (unsigned long long)dh_du_bytes(upper));
		cr_expect_eq(inodes, dh_du_inodes(upper), "tally stats: %s %llu inodes, du %llu",
			     ids[i], inodes, (unsigned long long)dh_du_inodes(upper));
	}
}

/* ---- the host end of the pod's TCP exchange -------------------------------------------- */

/* Accept one connection: read UP bytes to EOF, send DOWN, close. Exits 0 when all went so. */
static void serve(int lfd)
{
	static char buf[65536];
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	size_t got = 0, sent = 0;
	ssize_t n;
	int fd;

	if (poll(&p, 1, 60000) != 1 || (fd = accept(lfd, NULL, NULL)) < 0)
		_exit(2);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += (size_t)n;
	memset(buf, 'd', sizeof(buf));
	while (sent < DOWN &&
	       (n = write(fd, buf, DOWN - sent < sizeof(buf) ? DOWN - sent : sizeof(buf))) > 0)
		sent += (size_t)n;
	/* the peer has closed its side already: this FIN ends the connection */
	close(fd);
	_exit(got == UP && sent == DOWN ? 0 : 3);
}

static int server_start(const struct ctrd_net *n)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(lfd, 0);
	cr_assert_eq(inet_pton(AF_INET, n->gw, &sin.sin_addr), 1);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0, "bind %s: %s", n->gw,
		     strerror(errno));
	cr_assert_eq(listen(lfd, 1), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	server = fork();
	cr_assert_geq(server, 0);
	if (server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		serve(lfd);
	}
	close(lfd);
	return ntohs(sin.sin_port);
}

static int server_wait(void)
{
	int st = -1;

	for (int i = 0; i < 3000 && server > 0; i++) {
		if (waitpid(server, &st, WNOHANG) == server)
			server = -1;
		else
			th_sleep_ms(10);
	}
	cr_assert_eq(server, -1, "the TCP server did not finish in 30 s");
	return st;
}

/* A file a container wrote, read through /proc/<pid>/root, once it is there (bounded). */
static void wait_file(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "/proc/%d/root/%s", (int)pid, name);
	for (int i = 0; i < 3000; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			ssize_t n = read(fd, buf, len - 1);

			close(fd);
			if (n > 0) {
				buf[n] = '\0';
				return;
			}
		}
		th_sleep_ms(10);
	}
	cr_assert_fail("%s did not appear in 30 s", path);
}

static void touch(pid_t pid, const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/root/%s", (int)pid, name);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	close(fd);
}

static double elapsed(uint64_t t0)
{
	return (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
}

static bool tcp_timestamps(const char *netns)
{
	char cmd[256], out[64];

	snprintf(cmd, sizeof(cmd), "cat /proc/sys/net/ipv4/tcp_timestamps");
	cr_assert_eq(th_run(cmd, out, sizeof(out)), 0);
	if (atoi(out) == 0)
		return false;
	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /proc/sys/net/ipv4/tcp_timestamps", netns);
	cr_assert_eq(th_run(cmd, out, sizeof(out)), 0);
	return atoi(out) != 0;
}

/*
 * What the writer does once told to: files of known sizes, a subdirectory, a hard link (one
 * inode, two names), a symlink, a file made and removed, a lower file changed (copied up) and
 * one removed (a whiteout in the upper dir); /done last.
 */
static const char writer_script[] =
    "until [ -e /go ]; do sleep 0.05; done; "
    "mkdir -p /data/w/sub && "
    "dd if=/dev/urandom of=/data/w/a bs=1000 count=300 2>/dev/null && "
    "dd if=/dev/urandom of=/data/w/sub/b bs=1 count=1 2>/dev/null && "
    "echo tally > /data/w/c && ln /data/w/c /data/w/c2 && ln -s a /data/w/l && "
    "dd if=/dev/urandom of=/data/w/gone bs=4096 count=16 2>/dev/null && rm /data/w/gone && "
    "echo tally:x:1:1::/:/bin/sh >> /etc/passwd && rm /bin/yes && "
    "echo ok > /done; exec sleep 600";

Test(containerd, three_containers_against_the_kernel)
{
	char why[512], burn[64], writer[64], net[64], script[512], buf[64], netns[128];
	uint64_t since, hdr, t0;
	pid_t burn_pid, wr_pid, net_pid;
	struct nh_stats host0, host1, d;
	const char *const ids[] = {burn, writer, net};
	struct ctrd_net n;
	struct agent a;
	static const char *const quiet[] = {"udp", "icmp", "other"};
	uint64_t quiet0[3];
	struct flat f;
	struct ctrd c;
	int port, st;

	if (!ctrd_available(why, sizeof(why)))
		cr_skip_test("%s", why);
	t0 = now_ns(CLOCK_MONOTONIC);
	snprintf(burn, sizeof(burn), "tally-test-burn-%d", (int)getpid());
	snprintf(writer, sizeof(writer), "tally-test-write-%d", (int)getpid());
	snprintf(net, sizeof(net), "tally-test-net-%d", (int)getpid());

	ctrd_start(&c);
	ctrd_net_create(&c, &n);
	snprintf(netns, sizeof(netns), "/run/netns/%s", n.netns);
	/* One wire segment per skb on both ends: the veth's counts are the sockets' segments. */
	nh_set_tso(NULL, n.host, false);
	nh_set_tso(n.netns, "eth0", false);
	port = server_start(&n);
	cr_log_info("containerd: node and pod network up at %.1f s", elapsed(t0));

	/* The agent first: the containers are born under it, their sockets counted from birth. */
	agent_start(&a, "--period 200ms");
	burn_pid = ctrd_run(&c, burn, NULL, "while :; do :; done");
	wr_pid = ctrd_run(&c, writer, NULL, writer_script);
	snprintf(script, sizeof(script),
		 "until [ -e /go ]; do sleep 0.05; done; "
		 "dd if=/dev/zero bs=1000 count=%d 2>/dev/null | nc %s %d | wc -c > /got; "
		 "exec sleep 600",
		 UP / 1000, n.gw, port);
	net_pid = ctrd_run(&c, net, netns, script);
	cr_log_info("containerd: agent and containers started at %.1f s", elapsed(t0));

	/* 1. Each container as tally first knows it: named, placed, and idle but the burner. */
	since = now_ns(CLOCK_REALTIME);
	fetch_after(&a, burn, "cpu.timestamp_ns", since, NULL, NULL, &f);
	expect_identity(&a, burn, burn_pid, &f);
	fetch_after(&a, writer, "cpu.timestamp_ns", since, NULL, NULL, &f);
	expect_identity(&a, writer, wr_pid, &f);
	/* the pod's interface is there once tally has seen its namespace settle */
	fetch_after(&a, net, "cpu.timestamp_ns", since, "network.default_interface.name", "eth0",
		    &f);
	expect_identity(&a, net, net_pid, &f);
	for (int i = 0; i < 3; i++)
		expect_cpu(&a, ids[i]);
	expect_layers(&c, &a, writer, now_ns(CLOCK_REALTIME));
	fetch_stable(&a, net, n.host, now_ns(CLOCK_REALTIME), &f, &host0);
	expect_interface(&f, &host0);
	/*
	 * What tc counted before the exchange besides TCP: the kernel's own, such as the IGMP
	 * report a pod's interface sends when it comes up (seen once, 54 bytes, "other").
	 */
	for (int i = 0; i < 3; i++)
		quiet0[i] = proto_packets(&f, quiet[i]);
	for (int i = 0; i < 3; i++) {
		const char *k[] = {"rx_bytes", "rx_packets", "tx_bytes", "tx_packets"};

		fetch(&a, ids[i], &f);
		for (int j = 0; j < 4; j++)
			cr_expect_eq(flat_u64(&f, dh_path("network.sockets.%s", k[j])), 0,
				     "%s: no socket traffic yet, tally says %s", ids[i],
				     flat_get(&f, dh_path("network.sockets.%s", k[j])));
	}

	cr_log_info("containerd: first look checked at %.1f s", elapsed(t0));

	/* 2. The writer writes, the pod exchanges UP and DOWN bytes with the host over TCP. */
	touch(wr_pid, "go");
	touch(net_pid, "go");
	st = server_wait();
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the host's TCP server: status %d", st);
	wait_file(net_pid, "got", buf, sizeof(buf));
	cr_assert_eq(atoi(buf), DOWN, "the pod received %s bytes", buf);
	wait_file(wr_pid, "done", buf, sizeof(buf));
	since = now_ns(CLOCK_REALTIME);

	for (int i = 0; i < 3; i++)
		expect_cpu(&a, ids[i]);
	for (int i = 0; i < 3; i++)
		expect_layers(&c, &a, ids[i], since);
	fetch_after(&a, writer, "writable_layer.timestamp_ns", since, NULL, NULL, &f);
	cr_expect_gt(flat_u64(&f, "writable_layer.used_bytes"), 300000, "the writer wrote 300 kB");
	expect_stats_command(&c, ids, 3);
	cr_log_info("containerd: layers and tally stats checked at %.1f s", elapsed(t0));

	fetch_stable(&a, net, n.host, since, &f, &host1);
	expect_interface(&f, &host1);
	d = nh_stats_delta(&host1, &host0);
	cr_log_info("%s: sockets rx %s B %s pkts, tx %s B %s pkts; host veth delta rx %llu B %llu "
		    "pkts, tx %llu B %llu pkts",
		    net, flat_get(&f, "network.sockets.rx_bytes"),
		    flat_get(&f, "network.sockets.rx_packets"),
		    flat_get(&f, "network.sockets.tx_bytes"),
		    flat_get(&f, "network.sockets.tx_packets"), (unsigned long long)d.rx_bytes,
		    (unsigned long long)d.rx_packets, (unsigned long long)d.tx_bytes,
		    (unsigned long long)d.tx_packets);
	/*
	 * The pod's socket is the only thing on the veth: every segment it sent is one the host
	 * end received (L3 bytes + an Ethernet header each), and the other way round.
	 */
	expect_sockets_on_link(&f, "tx", d.rx_packets, d.rx_bytes);
	expect_sockets_on_link(&f, "rx", d.tx_packets, d.tx_bytes);
	cr_expect_geq(flat_u64(&f, "network.sockets.tx_bytes"), UP);
	cr_expect_geq(flat_u64(&f, "network.sockets.rx_bytes"), DOWN);
	/*
	 * tc on the host veth since tally attached (before the exchange): all TCP. It may see
	 * GSO skbs before the veth cuts them into segments: each segment beyond the first of
	 * an skb adds its own Ethernet, IPv4 and TCP headers (with timestamps) on the link.
	 */
	hdr = ETH_HLEN + 20 + 20 + (tcp_timestamps(n.netns) ? 12 : 0);
	expect_tc_on_link(&f, "tx", d.rx_packets, d.rx_bytes, hdr);
	expect_tc_on_link(&f, "rx", d.tx_packets, d.tx_bytes, hdr);
	for (int i = 0; i < 3; i++) {
		const char *k = dh_path("network.default_interface.protocols.%s.", quiet[i]);

		cr_expect_eq(proto_packets(&f, quiet[i]) - quiet0[i], 0,
			     "no %s on the veth during the exchange: rx %s bytes %s packets, tx %s "
			     "bytes %s packets",
			     quiet[i], flat_get(&f, dh_path("%srx_bytes", k)),
			     flat_get(&f, dh_path("%srx_packets", k)),
			     flat_get(&f, dh_path("%stx_bytes", k)),
			     flat_get(&f, dh_path("%stx_packets", k)));
	}
	/* The other two have only their own loopback: nothing of the pod's traffic. */
	for (int i = 0; i < 2; i++) {
		fetch(&a, ids[i], &f);
		cr_expect_eq(flat_u64(&f, "network.sockets.rx_bytes") +
				 flat_u64(&f, "network.sockets.tx_bytes"),
			     0, "%s has no socket traffic", ids[i]);
		cr_expect_null(flat_get(&f, "network.interfaces.0.name"), "%s: only lo", ids[i]);
	}

	cr_log_info("containerd: network checked at %.1f s", elapsed(t0));

	/* 3. Containers removed: gone from the agent at its next collections. */
	for (int i = 0; i < 3; i++)
		ctrd_remove(&c, ids[i]);
	for (int i = 0; i < 3; i++) {
		int t = 0;

		while (fetch(&a, ids[i], &f) && t++ < 200)
			th_sleep_ms(50);
		cr_expect_lt(t, 200, "%s still listed 10 s after its removal", ids[i]);
	}
	cr_expect_eq(agent_stop(&a, SIGTERM, 60000), 0);
	agent_kill(&a);
}
