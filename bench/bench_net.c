// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * make bench, network path. Prints, measured in this run on this machine:
 *  1. the BPF cost of each program per run (bpf_stats run_time_ns / run_cnt) and per segment,
 *     under an iperf3 TCP stream and then a UDP stream of 64-byte datagrams, from a network
 *     namespace to the host over a veth, with tally's programs attached (cgroup_skb at the
 *     cgroup v2 root, tc on the veth's host end);
 *  2. the throughput of that TCP stream without and with tally's programs, alternating;
 *  3. one collection tick of the network side for 10, 100 and 500 pods (a namespace, a veth
 *     pair to the host, a sleeping process in a cgroup of its own): tally's podnet (one dump of
 *     the host's links) against entering every namespace for a link dump (CRI-O, containerd)
 *     and reading every pod's /proc/<pid>/net/dev (cAdvisor).
 * Everything it creates is named after the pid (namespaces tally-bench-<pid>-..., devices
 * tb<pid>..., cgroups <cgroup2>/tally-bench-<pid>-net/...) and is removed on every exit path:
 * normal end, failure, and SIGINT/SIGTERM/SIGHUP (taken by a thread of its own, so the cleanup
 * runs in a plain thread and never races a half-made namespace: creation holds a lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "tally/net.h"
#include "discovery.h"
#include "net.h"
#include "net.skel.h"
#include "netif.h"
#include "podnet.h"
#include "util.h"

#define MAX_PODS    500
#define MAX_NETNS   (MAX_PODS + 1)
#define TICK_REPS   11
#define STREAM_SECS 4 /* figure 1, each stream */
/* Figure 2: runs of TPUT_SECS without and with tally, TPUT_REPS each (single runs vary by 10%). */
#define TPUT_SECS  4
#define TPUT_REPS  7
#define READY_SECS 30 /* a pod's process that is not ready by then has failed */
#define N_PROGS	   4

static const int pod_steps[] = {10, 100, 500};

/*
 * What this benchmark created, for cleanup, besides the guard's children and cgroups (see
 * bench.h); creation and cleanup hold the guard's lock.
 */
static struct {
	char top[PATH_MAX + 32]; /* <cgroup2>/tally-bench-<pid>-net */
	char netns[MAX_NETNS][64];
	int n_netns;
	char devs[MAX_NETNS][IF_NAMESIZE];
	int n_devs;
	/* Owned by the main thread; freed by it (a signal's cleanup leaves them to exit). */
	struct tally_net *net;
	struct podnet *pods;
	int stats_fd;
} g = {.stats_fd = -1};

static char cgroot[PATH_MAX];

struct pod {
	char ns[64];
	char dev[IF_NAMESIZE];
	const char *cg;
	pid_t pid;
	uint64_t cgid, ino;
	int host_ifindex;
};

static struct pod pods[MAX_PODS];
static int n_pods;

/* The stream of figures 1 and 2: netns <-> host over one veth. */
static struct {
	char ns[64], nspath[80], dev[IF_NAMESIZE];
	char host_ip[INET_ADDRSTRLEN], peer_ip[INET_ADDRSTRLEN], port[8];
	const char *srv_cg, *cli_cg;
	uint64_t cli_cgid;
	int ifindex;
	pid_t server;
} st;

/* --- small helpers --- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of n <= 16 values, which stay in their order. */
static double median_d(const double *in, int n)
{
	double v[16];

	memcpy(v, in, (size_t)n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --- children --- */

struct child {
	const char *cg;	    /* absolute cgroup dir, or NULL */
	const char *nspath; /* a netns file to enter, or NULL */
	int out_fd;	    /* becomes stdout; -1: /dev/null */
	int keep1, keep2;   /* fds the child keeps besides stdio */
	void (*fn)(void *);
	void *arg;
};

/*
 * Fork a child that enters its cgroup and namespace and runs fn (which execs or _exits). The
 * child dies with this process (PR_SET_PDEATHSIG) and is tracked for cleanup.
 */
static pid_t child_start(const struct child *c)
{
	pid_t pid = bench__fork(c->out_fd, -1, c->keep1, c->keep2);

	if (pid == 0) {
		char buf[32];
		int fd;

		if (c->cg) {
			char path[PATH_MAX + 16];

			snprintf(path, sizeof(path), "%s/cgroup.procs", c->cg);
			snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
			if (bench__write_str(path, buf))
				_exit(2);
		}
		if (c->nspath) {
			fd = open(c->nspath, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || setns(fd, CLONE_NEWNET))
				_exit(3);
			close(fd);
		}
		c->fn(c->arg);
		_exit(0);
	}
	return pid;
}

static void kid_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	bench__wait(pid);
}

static void exec_argv(void *arg)
{
	char *const *argv = arg;

	execvp(argv[0], argv);
	_exit(127);
}

#define RUN(...)                                                                                   \
	do {                                                                                       \
		const char *const argv_[] = {__VA_ARGS__, NULL};                                   \
		if (bench__run(argv_, -1))                                                         \
			bench__die("run ip (iproute2)", EIO);                                      \
	} while (0)

/* --- cgroups --- */

static const char *mkcg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *mkcg(const char *fmt, ...)
{
	va_list ap;
	char *abs;

	va_start(ap, fmt);
	abs = bench__vpath(g.top, fmt, ap);
	va_end(ap);
	return bench__cg_make(abs);
}

static uint64_t cgid_of(const char *dir)
{
	struct stat sb;

	if (stat(dir, &sb))
		bench__die("stat a cgroup", errno);
	return sb.st_ino;
}

/* --- cleanup --- */

/* The guard's callback (bench.h). */
static void net_cleanup(bool owner)
{
	struct sbuf b = {};

	if (owner) {
		/* Detaches tc from the pods' veths and the programs from the cgroup root. */
		podnet__free(g.pods);
		net__free(g.net);
		g.pods = NULL;
		g.net = NULL;
		if (g.stats_fd >= 0)
			close(g.stats_fd);
		g.stats_fd = -1;
	}
	/* Processes first: a namespace lives as long as one of them is inside. */
	bench__kill_all();
	/*
	 * Deleting a namespace unregisters its devices, the veth pairs with them, in one batch
	 * of the kernel's (about 0.3 s for 500 pairs here), where deleting 500 veths one by one
	 * takes 11 s. It is asynchronous: bench__links_del waits for the host ends to go.
	 */
	for (int i = 0; i < g.n_netns; i++)
		sbuf__addf(&b, "netns del %s\n", g.netns[i]);
	if (b.p)
		bench__ip_batch(b.p, b.len, true);
	free(b.p);
	bench__links_del(g.devs, g.n_devs);
	g.n_netns = g.n_devs = 0;
	bench__cgroups_remove();
	g.top[0] = '\0';
}

/* --- BPF figures --- */

static void prog_fds(struct tally_net *n, int fds[N_PROGS])
{
	struct net_bpf *s = net__skel(n);

	fds[0] = bpf_program__fd(s->progs.handle_cgroup_ingress);
	fds[1] = bpf_program__fd(s->progs.handle_cgroup_egress);
	fds[2] = bpf_program__fd(s->progs.handle_tc_ingress);
	fds[3] = bpf_program__fd(s->progs.handle_tc_egress);
}

static const char *const prog_names[N_PROGS] = {
    "handle_cgroup_ingress (cgroup_skb, root)",
    "handle_cgroup_egress (cgroup_skb, root)",
    "handle_tc_ingress (tcx, veth host end)",
    "handle_tc_egress (tcx, veth host end)",
};

/*
 * Programs someone else hooked into the paths measured here (another tally, a test's agent):
 * they add their cost to the figures and, through tcx attach and RTNL, slow the dumps. The
 * most seen at the cgroup root and on the benchmark's veths, beyond this run's own.
 */
static uint32_t others_root, others_veth;

static uint32_t prog_count(int target, int type)
{
	uint32_t flags = 0, cnt = 0;

	if (bpf_prog_query(target, (enum bpf_attach_type)type, 0, &flags, NULL, &cnt))
		return 0;
	return cnt;
}

static void others_check(int ifindex, uint32_t own)
{
	int fd = open(cgroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint32_t n;

	if (fd >= 0) {
		n = prog_count(fd, BPF_CGROUP_INET_INGRESS);
		close(fd);
		n = n > own ? n - own : 0;
		others_root = n > others_root ? n : others_root;
	}
	if (ifindex > 0) {
		/* BPF_TCX_INGRESS: newer than this libbpf's headers. */
		n = prog_count(ifindex, 46);
		n = n > own ? n - own : 0;
		others_veth = n > others_veth ? n : others_veth;
	}
}

/* --- the stream link and iperf3 --- */

static void stream_sysctls(void *arg)
{
	/* Before the device exists in there: no IPv6 address, no ND, MLD or RS on the link. */
	if (bench__write_str("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1") ||
	    bench__write_str("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1"))
		_exit(1);
}

static void stream_create(void)
{
	int pid = (int)getpid();
	/* A /30 of its own, away from the tests' 10.200-249 range. */
	uint32_t base = (10u << 24) | ((150u + (pid / 256) % 50) << 16) | ((pid % 256u) << 8);
	struct in_addr a;
	char hnet[32], pnet[32];
	struct child c = {.out_fd = -1, .keep1 = -1, .keep2 = -1, .fn = stream_sysctls};

	snprintf(st.ns, sizeof(st.ns), "tally-bench-%d-stream", pid);
	snprintf(st.nspath, sizeof(st.nspath), "/run/netns/%s", st.ns);
	snprintf(st.dev, sizeof(st.dev), "tb%ds", pid);
	snprintf(st.port, sizeof(st.port), "%d", 10000 + pid % 20000);
	a.s_addr = htonl(base + 1);
	inet_ntop(AF_INET, &a, st.host_ip, sizeof(st.host_ip));
	a.s_addr = htonl(base + 2);
	inet_ntop(AF_INET, &a, st.peer_ip, sizeof(st.peer_ip));
	snprintf(hnet, sizeof(hnet), "%s/30", st.host_ip);
	snprintf(pnet, sizeof(pnet), "%s/30", st.peer_ip);

	bench__lock();
	strcpy(g.netns[g.n_netns++], st.ns);
	strcpy(g.devs[g.n_devs++], st.dev);
	RUN("ip", "netns", "add", st.ns);
	c.nspath = st.nspath;
	if (bench__wait(child_start(&c)))
		bench__die("turn IPv6 off in the stream's namespace", EIO);
	RUN("ip", "link", "add", st.dev, "type", "veth", "peer", "name", "eth0", "netns", st.ns);
	if (bench__ipv6_off(st.dev))
		bench__die("turn IPv6 off on the stream's veth", errno);
	RUN("ip", "addr", "add", hnet, "dev", st.dev);
	RUN("ip", "link", "set", st.dev, "up");
	RUN("ip", "-n", st.ns, "addr", "add", pnet, "dev", "eth0");
	RUN("ip", "-n", st.ns, "link", "set", "eth0", "up");
	RUN("ip", "-n", st.ns, "link", "set", "lo", "up");
	bench__unlock();
	st.ifindex = (int)if_nametoindex(st.dev);
	if (st.ifindex <= 0)
		bench__die("find the stream's veth", ENODEV);
	st.srv_cg = mkcg("srv");
	st.cli_cg = mkcg("cli");
	st.cli_cgid = cgid_of(st.cli_cg);
}

/* Whether a TCP socket listens on ip:port in this namespace (/proc/net/tcp). */
static bool listening(const char *ip, int port)
{
	struct in_addr want;
	char line[256];
	bool found = false;
	FILE *f;

	if (inet_pton(AF_INET, ip, &want) != 1)
		return false;
	f = fopen("/proc/net/tcp", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned addr, lport, state;

		/* The address is the raw network-order word printed as a number. */
		if (sscanf(line, " %*u: %8X:%4X %*8X:%*4X %2X", &addr, &lport, &state) == 3)
			found = addr == want.s_addr && (int)lport == port && state == 0x0A;
	}
	fclose(f);
	return found;
}

static void server_start(void)
{
	static const char *argv[8];
	struct child c = {
	    .cg = st.srv_cg, .out_fd = -1, .keep1 = -1, .keep2 = -1, .fn = exec_argv, .arg = argv};
	int i = 0;

	argv[i++] = "iperf3";
	argv[i++] = "-s";
	argv[i++] = "-B";
	argv[i++] = st.host_ip;
	argv[i++] = "-p";
	argv[i++] = st.port;
	argv[i] = NULL;
	st.server = child_start(&c);
	for (int t = 0; !listening(st.host_ip, atoi(st.port)); t++) {
		if (t == 500 || waitpid(st.server, NULL, WNOHANG) != 0)
			bench__die("start the iperf3 server (install iperf3)", EIO);
		bench__sleep_ms(10);
	}
}

/* A number after "key": inside the object that follows section in iperf3's JSON; -1 if none. */
static double json_num(const char *json, const char *section, const char *key)
{
	char pat[64];
	const char *p = strstr(json, section);

	if (!p)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(p, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

struct iperf {
	double bps;	   /* received by the server */
	double sent_pps;   /* datagrams sent per second (UDP) */
	double lost_pct;   /* datagrams lost (UDP) */
	double cpu_client; /* cpu_utilization_percent.host_total */
	double cpu_server; /* remote_total */
};

/* One iperf3 client run from the stream's namespace, in its cgroup; extra ends with NULL. */
static void iperf_run(int secs, const char *const *extra, struct iperf *out)
{
	const char *argv[24];
	char t[16], buf[65536];
	struct sbuf json = {};
	struct child c = {.cg = st.cli_cg,
			  .nspath = st.nspath,
			  .keep1 = -1,
			  .keep2 = -1,
			  .fn = exec_argv,
			  .arg = argv};
	int fds[2], i = 0, status;
	ssize_t n;

	snprintf(t, sizeof(t), "%d", secs);
	argv[i++] = "iperf3";
	argv[i++] = "-c";
	argv[i++] = st.host_ip;
	argv[i++] = "-p";
	argv[i++] = st.port;
	argv[i++] = "-t";
	argv[i++] = t;
	argv[i++] = "-J";
	while (extra && *extra && i < 23)
		argv[i++] = *extra++;
	argv[i] = NULL;
	if (pipe2(fds, O_CLOEXEC))
		bench__die("create a pipe", errno);
	c.out_fd = fds[1];
	pid_t pid = child_start(&c);

	close(fds[1]);
	while ((n = read(fds[0], buf, sizeof(buf) - 1)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		buf[n] = '\0';
		if (sbuf__addf(&json, "%s", buf))
			bench__die("allocate", ENOMEM);
	}
	close(fds[0]);
	status = bench__wait(pid);
	if (!json.p || !WIFEXITED(status) || WEXITSTATUS(status)) {
		const char *e = json.p ? strstr(json.p, "\"error\"") : NULL;

		fprintf(stderr, "bench: iperf3 -c failed (status %d): %.200s\n", status,
			e ? e : "no output");
		bench__die("run the iperf3 client", EIO);
	}
	out->bps = json_num(json.p, "\"sum_received\"", "bits_per_second");
	out->sent_pps = json_num(json.p, "\"sum_sent\"", "packets") /
			json_num(json.p, "\"sum_sent\"", "seconds");
	out->lost_pct = json_num(json.p, "\"sum_received\"", "lost_percent");
	out->cpu_client = json_num(json.p, "\"cpu_utilization_percent\"", "host_total");
	out->cpu_server = json_num(json.p, "\"cpu_utilization_percent\"", "remote_total");
	free(json.p);
}

static struct tally_net *tally_on(void)
{
	struct tally_net *n = net__open(cgroot, NULL);
	int err;

	if (!n)
		bench__die("load and attach the network programs", errno);
	err = net__attach_if(n, st.ifindex);
	if (err)
		bench__die("attach tc to the stream's veth", err);
	return n;
}

/* Counters summed over every cgroup, and the client cgroup's own. */
struct cg_sums {
	uint64_t rx, tx, cli_rx, cli_tx;
};

static void cg_sums(struct tally_net *n, struct cg_sums *out)
{
	static struct net_sample s;
	const struct net_cg_entry *e;
	int err = net__read_cgroups(n, &s);

	if (err)
		bench__die("read the cgroup counters", err);
	*out = (struct cg_sums){};
	for (size_t i = 0; i < s.n; i++) {
		out->rx += s.e[i].rx_packets;
		out->tx += s.e[i].tx_packets;
	}
	e = net_sample__find(&s, st.cli_cgid);
	if (e) {
		out->cli_rx = e->rx_packets;
		out->cli_tx = e->tx_packets;
	}
}

/* Figure 1, one stream: per-program cost while it runs. */
static void fig1_stream(const char *title, const char *const *extra, bool udp)
{
	uint64_t ns0[N_PROGS], n0[N_PROGS], ns1[N_PROGS], n1[N_PROGS], segs[N_PROGS];
	struct cg_sums a, b;
	struct iperf r;
	int fds[N_PROGS];

	g.net = tally_on();
	prog_fds(g.net, fds);
	cg_sums(g.net, &a);
	for (int i = 0; i < N_PROGS; i++)
		if (bench__prog_stats(fds[i], &ns0[i], &n0[i]))
			bench__die("read program info", errno);
	iperf_run(STREAM_SECS, extra, &r);
	for (int i = 0; i < N_PROGS; i++)
		if (bench__prog_stats(fds[i], &ns1[i], &n1[i]))
			bench__die("read program info", errno);
	cg_sums(g.net, &b);
	others_check(st.ifindex, 1);
	net__free(g.net);
	g.net = NULL;

	/*
	 * Segments: what the cgroup programs counted (gso_segs per skb), over every cgroup for
	 * them; for tc on the host end, what the client's sockets sent (host ingress) and received
	 * (host egress): nothing else crosses that veth.
	 */
	segs[0] = b.rx - a.rx;
	segs[1] = b.tx - a.tx;
	segs[2] = b.cli_tx - a.cli_tx;
	segs[3] = b.cli_rx - a.cli_rx;
	if (udp)
		printf("%s, %d s: %.0f datagrams/s sent, %.0f%% of them dropped by the server's "
		       "full socket (after the cgroup hook):\n\n",
		       title, STREAM_SECS, r.sent_pps, r.lost_pct);
	else
		printf("%s, %d s: %.2f Gbit/s received:\n\n", title, STREAM_SECS, r.bps / 1e9);
	printf("| program | runs (skbs) | ns per run | segments | segments per run | ns per "
	       "segment |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < N_PROGS; i++) {
		uint64_t runs = n1[i] - n0[i], ns = ns1[i] - ns0[i];

		printf("| %s | %llu | %.0f | %llu | %.2f | %.1f |\n", prog_names[i],
		       (unsigned long long)runs, runs ? (double)ns / (double)runs : 0,
		       (unsigned long long)segs[i], runs ? (double)segs[i] / (double)runs : 0,
		       segs[i] ? (double)ns / (double)segs[i] : 0);
	}
	{
		uint64_t total = 0;
		double cpu = (r.cpu_client + r.cpu_server) / 100.0 * STREAM_SECS * 1e9;

		for (int i = 0; i < N_PROGS; i++)
			total += ns1[i] - ns0[i];
		printf(
		    "\nThe four programs ran %.1f ms in %d s: %.1f%% of one CPU, %.1f%% of the CPU "
		    "time of both iperf3 ends (client %.0f%%, server %.0f%% of a CPU, softirq work "
		    "done in their context included).\n",
		    total / 1e6, STREAM_SECS, 100.0 * (double)total / (STREAM_SECS * 1e9),
		    cpu > 0 ? 100.0 * (double)total / cpu : 0, r.cpu_client, r.cpu_server);
	}
	printf("\n");
}

/* --- pods --- */

struct sleeper {
	int ready, go; /* write end, read end */
};

static int if_up(int fd, const char *name)
{
	struct ifreq ifr = {};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(fd, SIOCSIFFLAGS, &ifr) ? -errno : 0;
}

/* A pod's process, in its cgroup and namespace: IPv6 off, wait for its veth, bring it up. */
static void pod_sleeper(void *arg)
{
	const struct sleeper *s = arg;
	char c;
	int fd;

	stream_sysctls(NULL);
	if (write(s->ready, "s", 1) != 1)
		_exit(4);
	while (read(s->go, &c, 1) < 0 && errno == EINTR)
		;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || if_up(fd, "lo") || if_up(fd, "eth0"))
		_exit(5);
	close(fd);
	if (write(s->ready, "u", 1) != 1)
		_exit(6);
	close(s->ready);
	close(s->go);
	for (;;)
		pause();
}

/* Pods [n_pods, n): namespaces, veth pairs, cgroups, one sleeping process each. */
static void pods_grow(int n)
{
	int pid = (int)getpid(), first = n_pods, ready[2], go[2];
	struct sbuf b = {};
	uint64_t t0 = clock__monotonic_ns();

	fprintf(stderr, "net: creating pods %d to %d\n", first, n - 1);
	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		bench__die("create a pipe", errno);
	bench__lock();
	for (int i = first; i < n; i++) {
		struct pod *p = &pods[i];

		snprintf(p->ns, sizeof(p->ns), "tally-bench-%d-pod%d", pid, i);
		snprintf(p->dev, sizeof(p->dev), "tb%dp%d", pid, i);
		strcpy(g.netns[g.n_netns++], p->ns);
		strcpy(g.devs[g.n_devs++], p->dev);
		if (sbuf__addf(&b, "netns add %s\n", p->ns))
			bench__die("allocate", ENOMEM);
	}
	if (bench__ip_batch(b.p, b.len, false))
		bench__die("create the pods' network namespaces", EIO);
	for (int i = first; i < n; i++) {
		struct pod *p = &pods[i];
		char nspath[96];
		struct sleeper s = {.ready = ready[1], .go = go[0]};
		struct child c = {
		    .out_fd = -1, .keep1 = ready[1], .keep2 = go[0], .fn = pod_sleeper, .arg = &s};

		p->cg = mkcg("pods/pod%d", i);
		p->cgid = cgid_of(p->cg);
		snprintf(nspath, sizeof(nspath), "/run/netns/%s", p->ns);
		c.cg = p->cg;
		c.nspath = nspath;
		p->pid = child_start(&c);
	}
	close(ready[1]);
	close(go[0]);
	bench__wait_ready(ready[0], n - first, READY_SECS, "start the pods' processes", NULL);
	b.len = 0;
	for (int i = first; i < n; i++)
		sbuf__addf(&b, "link add %s type veth peer name eth0 netns %s\n", pods[i].dev,
			   pods[i].ns);
	if (bench__ip_batch(b.p, b.len, false))
		bench__die("create the pods' veth pairs", EIO);
	b.len = 0;
	for (int i = first; i < n; i++) {
		if (bench__ipv6_off(pods[i].dev))
			bench__die("turn IPv6 off on a pod's veth", errno);
		sbuf__addf(&b, "link set %s up\n", pods[i].dev);
		pods[i].host_ifindex = (int)if_nametoindex(pods[i].dev);
	}
	if (bench__ip_batch(b.p, b.len, false))
		bench__die("bring the pods' veths up", EIO);
	close(go[1]); /* go: the pods bring their ends up */
	bench__wait_ready(ready[0], n - first, READY_SECS, "bring the pods' veths up", NULL);
	close(ready[0]);
	n_pods = n;
	bench__unlock();
	free(b.p);
	fprintf(stderr, "net: %d pods created in %.1f s\n", n - first,
		(clock__monotonic_ns() - t0) / 1e9);
}

/* Baseline b: per pod, setns there, one RTM_GETLINK dump, setns back (CRI-O, containerd). */
struct enter_job {
	int n, reps;
	uint64_t t[TICK_REPS];
	size_t links; /* found in the last pass */
	int err;
};

static void *enter_every_ns(void *arg)
{
	struct enter_job *j = arg;
	struct netif_list l = {};
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (self < 0) {
		j->err = -errno;
		return NULL;
	}
	for (int r = 0; r < j->reps && !j->err; r++) {
		uint64_t t0 = clock__monotonic_ns();

		j->links = 0;
		for (int i = 0; i < j->n && !j->err; i++) {
			char path[96];
			struct netif_sock *s;
			int fd;

			snprintf(path, sizeof(path), "/run/netns/%.63s", pods[i].ns);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || setns(fd, CLONE_NEWNET)) {
				j->err = -errno;
				break;
			}
			close(fd);
			s = netif_sock__new();
			if (!s)
				j->err = -errno;
			else
				j->err = netif_sock__dump_links(s, &l);
			j->links += l.n;
			netif_sock__free(s);
			/* This thread only: it ends here on failure, and the others never moved. */
			if (setns(self, CLONE_NEWNET) && !j->err)
				j->err = -errno;
		}
		j->t[r] = clock__monotonic_ns() - t0;
	}
	netif_list__free(&l);
	close(self);
	return NULL;
}

/*
 * A net/dev file read and parsed: every interface's counters, those of want (when not NULL)
 * into out. Returns how many interfaces it lists, or -errno; *found: want was among them.
 */
static int read_net_dev(const char *path, char *buf, size_t size, const char *want, uint64_t out[4],
			int *found)
{
	char *line, *save = NULL;
	ssize_t n = bench__read_small(path, buf, size);
	int count = 0;

	if (n < 0)
		return (int)n;
	/*
	 * Two header lines, then "  name: rx_bytes rx_packets errs drop fifo frame compressed
	 * multicast tx_bytes tx_packets ..." per interface.
	 */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':'), *p, *name = line;
		uint64_t v[10];

		if (!colon)
			continue;
		*colon = '\0';
		while (*name == ' ')
			name++;
		p = colon + 1;
		for (int k = 0; k < 10; k++)
			v[k] = strtoull(p, &p, 10);
		count++;
		if (want && !strcmp(name, want)) {
			out[0] = v[0];
			out[1] = v[1];
			out[2] = v[8];
			out[3] = v[9];
			*found = 1;
		}
	}
	return count;
}

struct tick_row {
	int n;
	uint64_t create, attach, attach_cpu, lookup, detach;
	uint64_t attached; /* from the first podnet__begin until the worker attached every veth */
	uint64_t getlink, getstats, host_netdev; /* the host side alone, for comparison */
	int links;
	uint64_t tick, dump, end, read_cg;
	uint64_t enter, netdev;
	int ok_tally, ok_enter, ok_netdev;
};

/* For comparison: what else could read the host side's counters, with tally's tc attached. */
static void host_alternatives(struct tick_row *row)
{
	uint64_t gl[TICK_REPS], gs[TICK_REPS], nd[TICK_REPS], t0, v[4];
	static char buf[1 << 20];
	struct netif_list l = {};
	struct netif_sock *s = netif_sock__new();
	int ret, found;

	if (!s)
		bench__die("open a netlink socket", errno);
	for (int r = -1; r < TICK_REPS; r++) {
		t0 = clock__monotonic_ns();
		if ((ret = netif_sock__dump_links(s, &l)))
			bench__die("dump the host's links", ret);
		if (r >= 0)
			gl[r] = clock__monotonic_ns() - t0;
		t0 = clock__monotonic_ns();
		/* What podnet does per tick between link events. */
		if ((ret = netif_sock__dump_stats(s, &l)))
			bench__die("dump the host's link statistics", ret);
		if (r >= 0)
			gs[r] = clock__monotonic_ns() - t0;
		row->links = (int)l.n;
		t0 = clock__monotonic_ns();
		if ((ret = read_net_dev("/proc/self/net/dev", buf, sizeof(buf), NULL, v, &found)) <
		    0)
			bench__die("read /proc/self/net/dev", ret);
		if (r >= 0)
			nd[r] = clock__monotonic_ns() - t0;
	}
	row->getlink = bench__median(gl, TICK_REPS);
	row->getstats = bench__median(gs, TICK_REPS);
	row->host_netdev = bench__median(nd, TICK_REPS);
	netif_list__free(&l);
	netif_sock__free(s);
}

static void fig3_step(int n, struct tick_row *row)
{
	uint64_t tick[TICK_REPS], dump[TICK_REPS], end[TICK_REPS], rcg[TICK_REPS],
	    netdev[TICK_REPS], t0, t1, c0;
	struct net_opts o = {.max_ifaces = MAX_PODS + 64};
	struct net_sample s = {};
	struct enter_job job = {.n = n, .reps = TICK_REPS};
	static char devbuf[8192];
	pthread_t thr;
	size_t vsize;
	void *vals;
	int err, map_fd, nr_cpus = libbpf_num_possible_cpus();

	fprintf(stderr, "net: one tick, %d pods\n", n);
	row->n = n;
	g.net = net__open(cgroot, &o);
	if (!g.net)
		bench__die("load and attach the network programs", errno);
	g.pods = podnet__new(g.net);
	if (!g.pods)
		bench__die("create the pod network tracker", errno);
	podnet__background(g.pods); /* as the agent runs it */

	/*
	 * Setup: the first tick queues the attach of tc to every pod's host veth for the worker;
	 * each namespace entered once.
	 */
	t0 = clock__monotonic_ns();
	t1 = t0;
	c0 = bench__thread_cpu_ns();
	err = podnet__begin(g.pods);
	row->attach = clock__monotonic_ns() - t0;
	row->attach_cpu = bench__thread_cpu_ns() - c0;
	if (err)
		bench__die("start the first tick", err);
	t0 = clock__monotonic_ns();
	for (int i = 0; i < n; i++) {
		err = podnet__lookup(g.pods, pods[i].cg, &pods[i].ino);
		if (err || !pods[i].ino)
			bench__die("find a pod's network namespace", err ? err : ENOENT);
	}
	row->lookup = clock__monotonic_ns() - t0;
	if ((err = podnet__end(g.pods)))
		bench__die("end the first tick", err);
	/* Ticks go on meanwhile; each picks up what the worker attached. */
	while (podnet__attaching(g.pods)) {
		bench__sleep_ms(5);
		if ((err = podnet__begin(g.pods)))
			bench__die("start a tick while tc is attached", err);
		for (int i = 0; i < n; i++)
			podnet__ref(g.pods, pods[i].ino);
		if ((err = podnet__end(g.pods)))
			bench__die("end a tick while tc is attached", err);
	}
	row->attached = clock__monotonic_ns() - t1;

	/* One socket-counter entry per pod, as if each had traffic: the read cost is per entry. */
	map_fd = bpf_map__fd(net__skel(g.net)->maps.cg_net);
	vsize = (size_t)nr_cpus * sizeof(struct net_counter);
	vals = calloc(1, vsize);
	if (!vals)
		bench__die("allocate", ENOMEM);
	for (int c = 0; c < nr_cpus; c++)
		((struct net_counter *)vals)[c] = (struct net_counter){1500, 1, 1500, 1};
	for (int i = 0; i < n; i++)
		if (bpf_map_update_elem(map_fd, &pods[i].cgid, vals, BPF_ANY))
			bench__die("fill the socket counter map", errno);
	free(vals);

	/* a: one tick as the collector does it, once every namespace is known. */
	for (int r = -1; r < TICK_REPS; r++) {
		uint64_t t2, t3;

		t0 = clock__monotonic_ns();
		if ((err = podnet__begin(g.pods)))
			bench__die("start a tick", err);
		t1 = clock__monotonic_ns();
		for (int i = 0; i < n; i++)
			podnet__ref(g.pods, pods[i].ino);
		if ((err = podnet__end(g.pods)))
			bench__die("end a tick", err);
		t2 = clock__monotonic_ns();
		if ((err = net__read_cgroups(g.net, &s)))
			bench__die("read the socket counters", err);
		t3 = clock__monotonic_ns();
		if (r < 0)
			continue; /* warm-up */
		tick[r] = t3 - t0;
		dump[r] = t1 - t0;
		end[r] = t2 - t1;
		rcg[r] = t3 - t2;
	}
	row->ok_tally = 0;
	for (int i = 0; i < n; i++) {
		const struct podnet_ns *ns = podnet__ns(g.pods, pods[i].ino);

		row->ok_tally += ns && ns->n == 1 &&
				 ns->ifs[0].host_ifindex == pods[i].host_ifindex &&
				 ns->ifs[0].has_stats && ns->ifs[0].has_proto;
	}
	if (s.n < (size_t)n)
		bench__die("read back every pod's socket counters", EIO);
	net_sample__free(&s);
	host_alternatives(row);
	others_check(pods[0].host_ifindex, 1);
	others_check(pods[n - 1].host_ifindex, 1);
	t0 = clock__monotonic_ns();
	podnet__free(g.pods);
	g.pods = NULL;
	net__free(g.net); /* detaches tc from every veth, then the programs */
	g.net = NULL;
	row->detach = clock__monotonic_ns() - t0;

	/* b: a thread of its own moves between namespaces; this one never leaves the host's. */
	err = pthread_create(&thr, NULL, enter_every_ns, &job);
	if (err)
		bench__die("start a thread", err);
	pthread_join(thr, NULL);
	if (job.err)
		bench__die("enter the pods' namespaces", job.err);
	row->ok_enter = (int)(job.links / 2); /* lo and eth0 */

	/* c */
	for (int r = -1; r < TICK_REPS; r++) {
		uint64_t v[4];
		int found = 0;

		t0 = clock__monotonic_ns();
		for (int i = 0; i < n; i++) {
			char path[64];
			int ret, f = 0;

			snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pods[i].pid);
			ret = read_net_dev(path, devbuf, sizeof(devbuf), "eth0", v, &f);
			if (ret < 0)
				bench__die("read a pod's /proc/<pid>/net/dev", ret);
			found += f;
		}
		if (r >= 0)
			netdev[r] = clock__monotonic_ns() - t0;
		row->ok_netdev = found;
	}
	row->tick = bench__median(tick, TICK_REPS);
	row->dump = bench__median(dump, TICK_REPS);
	row->end = bench__median(end, TICK_REPS);
	row->read_cg = bench__median(rcg, TICK_REPS);
	row->enter = bench__median(job.t, TICK_REPS);
	row->netdev = bench__median(netdev, TICK_REPS);
}

int bench_net(int argc, char **argv)
{
	static const char *const udp[] = {"-u", "-b", "0", "-l", "64", NULL};
	struct tick_row rows[sizeof(pod_steps) / sizeof(pod_steps[0])];
	const int n_steps = (int)(sizeof(pod_steps) / sizeof(pod_steps[0]));
	double off[TPUT_REPS], on[TPUT_REPS], cpu_off[2][TPUT_REPS], cpu_on[2][TPUT_REPS];
	uint64_t t_start = clock__monotonic_ns();
	int err;

	err = cgroup2__find_mount_file("/proc/self/mountinfo", cgroot, sizeof(cgroot));
	if (err)
		bench__die("find the cgroup2 mount", err);

	bench__guard_start("net", net_cleanup);
	snprintf(g.top, sizeof(g.top), "%s/tally-bench-%d-net", cgroot, (int)getpid());
	bench__cg_make(bench__asprintf("%s", g.top));
	mkcg("pods");

	printf("## Network path (tally bench, %ld CPUs)\n\n", sysconf(_SC_NPROCESSORS_ONLN));
	others_check(0, 0);

	/* 1 */
	fprintf(stderr, "net: TCP and UDP streams with bpf_stats\n");
	stream_create();
	server_start();
	{
		struct iperf warm;

		iperf_run(1, NULL, &warm); /* ARP, the server's first test */
	}
	g.stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (g.stats_fd < 0)
		bench__die("enable bpf_stats", g.stats_fd);
	printf("### 1. Cost per packet (bpf_stats run_time_ns / run_cnt; iperf3 from a netns to "
	       "the host over a veth, tally attached)\n\n");
	fig1_stream("TCP stream (iperf3, one stream)", NULL, false);
	fig1_stream("UDP stream (iperf3 -u -b 0 -l 64: 64-byte datagrams, unlimited rate)", udp,
		    true);
	close(g.stats_fd);
	g.stats_fd = -1;
	printf("Runs are per skb. A GSO skb (TCP, up to 64 KiB) is one run for all its segments, "
	       "so the cgroup programs' segments are what they counted (gso_segs), summed over "
	       "every cgroup; for tc, the segments the client's sockets sent (host ingress) and "
	       "received (host egress), the only traffic on that veth. bpf_stats adds its own "
	       "clock reads to every run.\n\n");

	/* 2: ABBA order, so a drift of the host during the runs weighs on both sides alike. */
	fprintf(stderr, "net: throughput, %d x 2 runs of %d s\n", TPUT_REPS, TPUT_SECS);
	for (int r = 0; r < TPUT_REPS; r++) {
		for (int k = 0; k < 2; k++) {
			bool with = (k == 0) == (r % 2 == 1);
			struct iperf res;

			if (with)
				g.net = tally_on();
			iperf_run(TPUT_SECS, NULL, &res);
			others_check(st.ifindex, with);
			if (with) {
				net__free(g.net);
				g.net = NULL;
			}
			(with ? on : off)[r] = res.bps;
			(with ? cpu_on : cpu_off)[0][r] = res.cpu_client;
			(with ? cpu_on : cpu_off)[1][r] = res.cpu_server;
		}
	}
	kid_stop(st.server);

	/* 3: the stream link goes first, so the host's links are the pods' only. */
	bench__lock();
	{
		char line[128];
		int len = snprintf(line, sizeof(line), "netns del %s\n", st.ns);

		bench__ip_batch(line, (size_t)len, true);
		for (int t = 0; t < 500 && if_nametoindex(st.dev) > 0; t++)
			bench__sleep_ms(20);
		g.n_netns--; /* the first ones made: stream_create runs before any pod */
		g.n_devs--;
		memmove(g.netns[0], g.netns[1], sizeof(g.netns[0]) * g.n_netns);
		memmove(g.devs[0], g.devs[1], sizeof(g.devs[0]) * g.n_devs);
	}
	bench__unlock();
	for (int i = 0; i < n_steps; i++) {
		uint64_t t0 = clock__monotonic_ns();

		pods_grow(pod_steps[i]);
		rows[i] = (struct tick_row){.create = clock__monotonic_ns() - t0};
		fig3_step(pod_steps[i], &rows[i]);
	}

	/* Printed after the measurements, so progress lines never interleave with a table. */
	double m_off = median_d(off, TPUT_REPS), m_on = median_d(on, TPUT_REPS);

	printf("### 2. veth TCP throughput, iperf3 -t %d, one stream netns -> host (median of %d, "
	       "alternating ABBA)\n\n",
	       TPUT_SECS, TPUT_REPS);
	printf("| | Gbit/s | runs, in order (Gbit/s) | client CPU %% | server CPU %% | CPU %% "
	       "(both) per Gbit/s |\n");
	printf("| --- | ---: | --- | ---: | ---: | ---: |\n");
	for (int k = 0; k < 2; k++) {
		const double *v = k ? on : off, *cc = k ? cpu_on[0] : cpu_off[0],
			     *cs = k ? cpu_on[1] : cpu_off[1];
		double per[TPUT_REPS];
		char runs[160];
		int len = 0;

		for (int r = 0; r < TPUT_REPS; r++) {
			len += snprintf(runs + len, sizeof(runs) - (size_t)len, "%s%.2f",
					r ? ", " : "", v[r] / 1e9);
			per[r] = (cc[r] + cs[r]) / (v[r] / 1e9);
		}
		printf("| %s | %.2f | %s | %.1f | %.1f | %.2f |\n",
		       k ? "with tally" : "without tally", (k ? m_on : m_off) / 1e9, runs,
		       median_d(cc, TPUT_REPS), median_d(cs, TPUT_REPS), median_d(per, TPUT_REPS));
	}
	printf("\nThroughput loss with tally (medians): %.1f%% (target: <= 3%%)\n\n",
	       100.0 * (m_off - m_on) / m_off);

	printf("### 3. One collection tick of the network side, N pods (ms, median of %d)\n\n",
	       TICK_REPS);
	printf("| N | a: tally tick | of which podnet__begin (host dump) | refs + podnet__end | "
	       "net__read_cgroups | b: enter every netns | b / a | c: /proc/PID/net/dev each | "
	       "c / a |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < n_steps; i++) {
		const struct tick_row *w = &rows[i];

		printf("| %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.1fx | %.3f | %.1fx |\n", w->n,
		       w->tick / 1e6, w->dump / 1e6, w->end / 1e6, w->read_cg / 1e6, w->enter / 1e6,
		       (double)w->enter / (double)w->tick, w->netdev / 1e6,
		       (double)w->netdev / (double)w->tick);
	}
	printf("\nThe host side alone, for comparison (ms, median of %d, tc attached): podnet's "
	       "RTM_GETLINK dump (netif_sock__dump_links, after link events), its RTM_GETSTATS "
	       "dump of IFLA_STATS_LINK_64 only (netif_sock__dump_stats, per tick), and "
	       "one read of the host's /proc/net/dev (not what tally does):\n\n",
	       TICK_REPS);
	printf("| N | host links | RTM_GETLINK dump | RTM_GETSTATS dump | host /proc/net/dev |\n");
	printf("| ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < n_steps; i++) {
		const struct tick_row *w = &rows[i];

		printf("| %d | %d | %.3f | %.3f | %.3f |\n", w->n, w->links, w->getlink / 1e6,
		       w->getstats / 1e6, w->host_netdev / 1e6);
	}
	printf("\nSetup, once (ms): creating this step's pods (namespaces, veths, processes), the "
	       "first podnet__begin (in the agent's mode: it queues tcx's attach to every pod's "
	       "host veth for the worker thread; wall and CPU time), podnet__lookup of every pod "
	       "(each namespace entered once), from that first podnet__begin until ticks had "
	       "picked up every veth as attached (the worker's time), podnet__free and net__free "
	       "(tcx detached). Pods whose eth0 counters each method found.\n\n");
	printf("| N | create pods | first podnet__begin | its CPU | podnet__lookup all | "
	       "all attached (worker) | podnet__free + net__free | found: a | b | c |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < n_steps; i++) {
		const struct tick_row *w = &rows[i];

		printf("| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %d | %d |\n", w->n,
		       w->create / 1e6, w->attach / 1e6, w->attach_cpu / 1e6, w->lookup / 1e6,
		       w->attached / 1e6, w->detach / 1e6, w->ok_tally, w->ok_enter, w->ok_netdev);
	}
	printf(
	    "\nOther BPF programs seen on these paths during the run (another tally, a test's "
	    "agent), beyond this run's own: %u at the cgroup root, %u on the benchmark's veths%s\n",
	    others_root, others_veth,
	    others_root || others_veth
		? ". **The figures above are disturbed: rerun on a quiet machine.**"
		: " (none: the figures are this run's alone).");
	fflush(stdout);

	fprintf(stderr, "net: removing %d pods\n", n_pods);
	bench__guard_end();
	fprintf(stderr, "net: done in %.1f s\n", (clock__monotonic_ns() - t_start) / 1e9);
	return 0;
}
