// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "helpers.h"
#include "net_helpers.h"

#define MAX_TRACKED 64

static char netns[MAX_TRACKED][64];
static int n_netns;
static char devs[MAX_TRACKED][IF_NAMESIZE];
static int n_devs;
static int n_links; /* pairs created by this process: picks each one's subnet and MACs */

static pid_t run_child(const char *const argv[], int out_fd)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		dup2(out_fd >= 0 ? out_fd : null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int exit_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int nh_run(const char *const argv[])
{
	return exit_status(run_child(argv, -1));
}

int nh_capture(const char *const argv[], char *buf, size_t size)
{
	char sink[4096];
	size_t len = 0;
	ssize_t got;
	int fds[2];
	pid_t pid;

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = run_child(argv, fds[1]);
	close(fds[1]);
	while (len < size - 1 && (got = read(fds[0], buf + len, size - 1 - len)) > 0)
		len += (size_t)got;
	/* Whatever does not fit is read and dropped, so the child never blocks on a full pipe. */
	while (read(fds[0], sink, sizeof(sink)) > 0)
		;
	close(fds[0]);
	buf[len] = '\0';
	return exit_status(pid);
}

#define RUN(...)                                                                                   \
	do {                                                                                       \
		const char *const argv_[] = {__VA_ARGS__, NULL};                                   \
		cr_assert_eq(nh_run(argv_), 0, "command failed: %s %s %s %s", argv_[0], argv_[1],  \
			     argv_[2], argv_[3] ? argv_[3] : "");                                  \
	} while (0)

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t len = (ssize_t)strlen(s);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, s, len), len, "write %s: %s", path, strerror(errno));
	close(fd);
}

static int netns__enter(const char *ns)
{
	char path[128];
	int fd, err;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

static void ipv4__format(uint32_t ip, char *buf, size_t size)
{
	struct in_addr a = {.s_addr = ip};

	cr_assert_not_null(inet_ntop(AF_INET, &a, buf, size));
}

void nh_link_create(struct nh_link *l, const char *name, const char *tag)
{
	int pid = (int)getpid(), seq = n_links++;
	char hmac[32], pmac[32], hip[32], pip[32], hnet[40], pnet[40], path[128];
	/* A /30 per pair: 10.<200..249>.<pid>.<4 * seq>, unlikely to meet another run's. */
	uint32_t base = (10u << 24) | ((200u + (pid / 256) % 50) << 16) | ((pid % 256u) << 8) |
			(4u * (seq % 64));

	cr_assert_lt(n_netns, MAX_TRACKED);
	cr_assert_lt(n_devs, MAX_TRACKED);
	memset(l, 0, sizeof(*l));
	snprintf(l->ns, sizeof(l->ns), "tally-test-%s-%d", name, pid);
	snprintf(l->host, sizeof(l->host), "tly%.2s%dh", tag, pid);
	snprintf(l->peer, sizeof(l->peer), "tly%.2s%dn", tag, pid);
	l->host_ip = htonl(base + 1);
	l->peer_ip = htonl(base + 2);
	ipv4__format(l->host_ip, hip, sizeof(hip));
	ipv4__format(l->peer_ip, pip, sizeof(pip));
	snprintf(hnet, sizeof(hnet), "%s/30", hip);
	snprintf(pnet, sizeof(pnet), "%s/30", pip);
	/* Locally administered MACs, fixed, so both neighbour entries are known in advance. */
	snprintf(hmac, sizeof(hmac), "02:74:6c:%02x:%02x:%02x", (pid >> 8) & 0xff, pid & 0xff,
		 2 * seq & 0xff);
	snprintf(pmac, sizeof(pmac), "02:74:6c:%02x:%02x:%02x", (pid >> 8) & 0xff, pid & 0xff,
		 (2 * seq + 1) & 0xff);

	/* Remembered first, so cleanup removes them even if a step below fails. */
	strcpy(netns[n_netns++], l->ns);
	strcpy(devs[n_devs++], l->host);
	RUN("ip", "netns", "add", l->ns);
	/* Off before the device exists there: no IPv6 address, so no ND, MLD or RS ever. */
	RUN("ip", "netns", "exec", l->ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
	    "net.ipv6.conf.default.disable_ipv6=1");
	RUN("ip", "link", "add", l->host, "address", hmac, "type", "veth", "peer", "name", l->peer,
	    "address", pmac, "netns", l->ns);
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", l->host);
	write_file(path, "1");
	RUN("ip", "addr", "add", hnet, "dev", l->host);
	RUN("ip", "-n", l->ns, "addr", "add", pnet, "dev", l->peer);
	RUN("ip", "link", "set", l->host, "up");
	RUN("ip", "-n", l->ns, "link", "set", l->peer, "up");
	/* Permanent neighbours: no ARP crosses the pair, only the test's traffic. */
	RUN("ip", "neigh", "replace", pip, "lladdr", pmac, "dev", l->host, "nud", "permanent");
	RUN("ip", "-n", l->ns, "neigh", "replace", hip, "lladdr", hmac, "dev", l->peer, "nud",
	    "permanent");
	l->host_ifindex = (int)if_nametoindex(l->host);
	cr_assert_gt(l->host_ifindex, 0, "no ifindex for %s", l->host);
}

void nh_link_delete(struct nh_link *l)
{
	RUN("ip", "link", "del", l->host);
	for (int i = 0; i < n_devs; i++)
		if (!strcmp(devs[i], l->host)) {
			if (i != --n_devs)
				memcpy(devs[i], devs[n_devs], sizeof(devs[i]));
			break;
		}
}

/* Run fn(arg) in a forked child inside netns ns (NULL: this one); asserts it returned 0. */
static void in_netns(const char *ns, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (ns && netns__enter(ns))
			_exit(100);
		_exit(fn(arg) ? 101 : 0);
	}
	cr_assert_eq(exit_status(pid), 0, "in netns %s: failed", ns ? ns : "(host)");
}

struct offload {
	const char *dev;
	uint32_t cmd;
	bool on;
};

static int offload__set(void *arg)
{
	const struct offload *o = arg;
	struct ethtool_value v = {.cmd = o->cmd, .data = o->on};
	struct ifreq ifr = {.ifr_data = (void *)&v};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", o->dev);
	err = ioctl(fd, SIOCETHTOOL, &ifr);
	close(fd);
	return err;
}

void nh_set_tso(const char *ns, const char *dev, bool on)
{
	struct offload o = {.dev = dev, .cmd = ETHTOOL_STSO, .on = on};

	in_netns(ns, offload__set, &o);
}

void nh_set_gro(const char *ns, const char *dev, bool on)
{
	struct offload o = {.dev = dev, .cmd = ETHTOOL_SGRO, .on = on};

	in_netns(ns, offload__set, &o);
}

static uint64_t read_stat(const char *dev, const char *name)
{
	char path[128], buf[64];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", dev, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(len, 0, "read %s", path);
	buf[len] = '\0';
	return strtoull(buf, NULL, 10);
}

void nh_stats_read(const char *dev, struct nh_stats *s)
{
	s->rx_bytes = read_stat(dev, "rx_bytes");
	s->rx_packets = read_stat(dev, "rx_packets");
	s->tx_bytes = read_stat(dev, "tx_bytes");
	s->tx_packets = read_stat(dev, "tx_packets");
}

struct nh_stats nh_stats_delta(const struct nh_stats *after, const struct nh_stats *before)
{
	return (struct nh_stats){
	    .rx_bytes = after->rx_bytes - before->rx_bytes,
	    .rx_packets = after->rx_packets - before->rx_packets,
	    .tx_bytes = after->tx_bytes - before->tx_bytes,
	    .tx_packets = after->tx_packets - before->tx_packets,
	};
}

struct child_wrap {
	const char *ns;
	void (*fn)(void *);
	void *arg;
};

static void child_wrap__run(void *arg)
{
	struct child_wrap *w = arg;

	if (w->ns && netns__enter(w->ns))
		_exit(100);
	w->fn(w->arg);
}

pid_t nh_child_start(const char *cg, const char *ns, void (*fn)(void *), void *arg)
{
	/* The child has its own copy of this frame: it lives as long as it needs to. */
	struct child_wrap w = {.ns = ns, .fn = fn, .arg = arg};

	return th_child_start(cg, child_wrap__run, &w);
}

static void ready_sleeper(void *arg)
{
	int *p = arg;

	if (write(p[1], "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

pid_t nh_sleeper_start(const char *cg, const char *ns)
{
	int p[2];
	char b;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = nh_child_start(cg, ns, ready_sleeper, p);
	close(p[1]);
	cr_assert_eq(read(p[0], &b, 1), 1, "the container process failed to start");
	close(p[0]);
	return pid;
}

void nh_child_expect_ok(pid_t pid, const char *what)
{
	int status = th_child_wait(pid);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "%s: child failed (exit %d, signal %d)", what,
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static int fill(int fd, size_t n)
{
	static const char buf[65536];

	while (n) {
		ssize_t w = write(fd, buf, n < sizeof(buf) ? n : sizeof(buf));

		if (w <= 0)
			return -1;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t drain(int fd)
{
	static char buf[65536];
	size_t total = 0;
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)r;
	return r < 0 ? -1 : (ssize_t)total;
}

/* What a server child tells the parent once it listens: its port. */
struct server {
	uint32_t ip;
	int ready[2];
};

static int server__bind(struct server *s, int type)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = s->ip};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	close(s->ready[0]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    (type == SOCK_STREAM && listen(fd, 1)) || getsockname(fd, (struct sockaddr *)&a, &len))
		_exit(10);
	if (write(s->ready[1], &a.sin_port, sizeof(a.sin_port)) != sizeof(a.sin_port))
		_exit(11);
	close(s->ready[1]);
	return fd;
}

/* Start a server child and wait until it is bound; its port, network order. */
static pid_t server__start(struct server *s, const char *cg, void (*fn)(void *), void *arg,
			   uint16_t *port)
{
	pid_t pid;

	cr_assert_eq(pipe2(s->ready, O_CLOEXEC), 0);
	pid = nh_child_start(cg, NULL, fn, arg);
	close(s->ready[1]);
	cr_assert_eq(read(s->ready[0], port, sizeof(*port)), (ssize_t)sizeof(*port),
		     "server never got ready");
	close(s->ready[0]);
	return pid;
}

static int client__connect(uint32_t ip, uint16_t port, int type)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = ip, .sin_port = port};
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		_exit(20);
	return fd;
}

struct tcp_job {
	struct server srv;
	uint16_t port;
	size_t up, down;
	struct tcp_info *info; /* shared with the parent */
};

static void tcp_server(void *arg)
{
	struct tcp_job *j = arg;
	struct linger lg = {.l_onoff = 1, .l_linger = 60};
	int lfd = server__bind(&j->srv, SOCK_STREAM), fd;

	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		_exit(12);
	if (drain(fd) != (ssize_t)j->up)
		_exit(13);
	if (fill(fd, j->down))
		_exit(14);
	/* Lingering: close returns once the client acknowledged the FIN (LAST_ACK left). */
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) || close(fd))
		_exit(15);
}

static void tcp_client(void *arg)
{
	struct tcp_job *j = arg;
	socklen_t len = sizeof(*j->info);
	int fd = client__connect(j->srv.ip, j->port, SOCK_STREAM);

	if (fill(fd, j->up))
		_exit(21);
	if (shutdown(fd, SHUT_WR))
		_exit(22);
	/* EOF: the server's FIN is in, and the ACK for it went out before that. */
	if (drain(fd) != (ssize_t)j->down)
		_exit(23);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, j->info, &len))
		_exit(24);
	close(fd);
}

void nh_tcp_transfer(const struct nh_link *l, const char *srv_cg, const char *cli_cg, size_t up,
		     size_t down, struct tcp_info *client_info)
{
	struct tcp_job j = {.srv.ip = l->host_ip, .up = up, .down = down};
	pid_t srv, cli;

	j.info =
	    mmap(NULL, sizeof(*j.info), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(j.info, MAP_FAILED);
	srv = server__start(&j.srv, srv_cg, tcp_server, &j, &j.port);
	cli = nh_child_start(cli_cg, l->ns, tcp_client, &j);
	nh_child_expect_ok(cli, "tcp client");
	nh_child_expect_ok(srv, "tcp server");
	if (client_info)
		*client_info = *j.info;
	munmap(j.info, sizeof(*j.info));
}

struct udp_job {
	struct server srv;
	uint16_t port;
	unsigned total;
	const struct nh_udp_client *c;
};

static void udp_server(void *arg)
{
	struct udp_job *j = arg;
	static char buf[65536];
	int fd = server__bind(&j->srv, SOCK_DGRAM);

	for (unsigned i = 0; i < j->total; i++) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
		uint32_t ack;

		if (n < (ssize_t)sizeof(ack))
			_exit(12);
		/* Each datagram says how large its answer is. */
		memcpy(&ack, buf, sizeof(ack));
		if (ack > sizeof(buf) ||
		    sendto(fd, buf, ack, 0, (struct sockaddr *)&from, len) != (ssize_t)ack)
			_exit(13);
	}
}

struct udp_client_job {
	const struct udp_job *j;
	const struct nh_udp_client *c;
};

static void udp_client(void *arg)
{
	const struct udp_client_job *cj = arg;
	uint32_t ack = (uint32_t)cj->c->ack;
	static char buf[65536];
	int fd = client__connect(cj->j->srv.ip, cj->j->port, SOCK_DGRAM);

	memcpy(buf, &ack, sizeof(ack));
	for (unsigned i = 0; i < cj->c->count; i++) {
		if (send(fd, buf, cj->c->size, 0) != (ssize_t)cj->c->size)
			_exit(21);
		/* Lockstep: nothing is ever queued, so nothing is dropped. */
		if (recv(fd, buf + 4, sizeof(buf) - 4, 0) != (ssize_t)ack)
			_exit(22);
	}
	close(fd);
}

void nh_udp_exchange(const struct nh_link *l, const char *srv_cg, const struct nh_udp_client *c,
		     int n)
{
	struct udp_job j = {.srv.ip = l->host_ip, .c = c};
	struct udp_client_job cj[8];
	pid_t srv, cli[8];

	cr_assert_leq(n, 8);
	for (int i = 0; i < n; i++) {
		cr_assert_geq(c[i].size, sizeof(uint32_t));
		j.total += c[i].count;
	}
	srv = server__start(&j.srv, srv_cg, udp_server, &j, &j.port);
	for (int i = 0; i < n; i++) {
		cj[i] = (struct udp_client_job){.j = &j, .c = &c[i]};
		cli[i] = nh_child_start(c[i].cg, l->ns, udp_client, &cj[i]);
	}
	for (int i = 0; i < n; i++)
		nh_child_expect_ok(cli[i], "udp client");
	nh_child_expect_ok(srv, "udp server");
}

struct ping_job {
	uint32_t ip;
	unsigned count;
	size_t payload;
};

static uint16_t inet_csum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static void ping_client(void *arg)
{
	const struct ping_job *j = arg;
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = j->ip};
	uint16_t id = (uint16_t)getpid();
	static uint8_t req[2048], rep[4096];
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);

	if (fd < 0 || j->payload + 8 > sizeof(req))
		_exit(20);
	for (unsigned i = 0; i < j->count; i++) {
		uint16_t seq = htons((uint16_t)i), sum;

		memset(req, 0, 8 + j->payload);
		req[0] = 8; /* echo request */
		memcpy(req + 4, &id, 2);
		memcpy(req + 6, &seq, 2);
		sum = inet_csum(req, 8 + j->payload);
		memcpy(req + 2, &sum, 2);
		if (sendto(fd, req, 8 + j->payload, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			_exit(21);
		/* A raw socket gets the IP header too; wait for our own reply. */
		for (;;) {
			ssize_t n = recv(fd, rep, sizeof(rep), 0);
			size_t ihl;

			if (n <= 0)
				_exit(22);
			ihl = (size_t)(rep[0] & 0xf) * 4;
			if ((size_t)n >= ihl + 8 && rep[ihl] == 0 &&
			    !memcmp(rep + ihl + 4, &id, 2) && !memcmp(rep + ihl + 6, &seq, 2))
				break;
		}
	}
	close(fd);
}

void nh_ping(const struct nh_link *l, const char *cg, unsigned count, size_t payload)
{
	struct ping_job j = {.ip = l->host_ip, .count = count, .payload = payload};

	nh_child_expect_ok(nh_child_start(cg, l->ns, ping_client, &j), "ping");
}

int nh_tcx_prog_count(int ifindex, bool egress)
{
	uint32_t flags = 0, cnt = 0;
	/* BPF_TCX_INGRESS / BPF_TCX_EGRESS: newer than this libbpf's headers. */
	int err = bpf_prog_query(ifindex, (enum bpf_attach_type)(egress ? 47 : 46), 0, &flags, NULL,
				 &cnt);

	cr_assert_eq(err, 0, "tcx query of ifindex %d: %s", ifindex, strerror(-err));
	return (int)cnt;
}

void nh_cleanup(void)
{
	while (n_devs) {
		const char *argv[] = {"ip", "link", "del", devs[--n_devs], NULL};

		nh_run(argv);
	}
	while (n_netns) {
		const char *argv[] = {"ip", "netns", "del", netns[--n_netns], NULL};

		nh_run(argv);
	}
}

/* The pid a test's name ends with, 0 when it is not one of ours. */
static int owner_pid(const char *name, const char *prefix, char last)
{
	size_t len = strlen(name), plen = strlen(prefix);
	const char *end = name + len - (last ? 1 : 0), *p = end;

	if (strncmp(name, prefix, plen) || (last && name[len - 1] != last))
		return 0;
	while (p > name + plen && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return p < end ? atoi(p) : 0;
}

/* A test that crashed never ran its .fini: remove what is left of tests whose pid is gone. */
static void sweep(const char *dir, const char *prefix, char last, const char *const *cmd)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		int pid = owner_pid(de->d_name, prefix, last);
		const char *argv[] = {cmd[0], cmd[1], cmd[2], de->d_name, NULL};

		if (pid > 0 && kill(pid, 0) && errno == ESRCH)
			nh_run(argv);
	}
	if (d)
		closedir(d);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	static const char *const link_del[] = {"ip", "link", "del"};
	static const char *const netns_del[] = {"ip", "netns", "del"};

	sweep("/sys/class/net", "tly", 'h', link_del);
	sweep("/run/netns", "tally-test-", 0, netns_del);
}
