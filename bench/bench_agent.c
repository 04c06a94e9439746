// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * make bench, the agent. For 100 and then 1,000 simulated containers, prints, measured in this
 * run on this machine:
 *  1. the CPU time of `build/tally agent --period 1s` (a separate process) over a steady window
 *     after a warm-up, from /proc/<pid>/stat and from its cgroup's cpu.stat, its RSS, and the
 *     run time of its BPF programs over the same window (bpf_stats);
 *  2. the latency of /metrics (plain and gzip) and /v1/containers over loopback;
 *  3. the same window for a baseline that does what today's agents do (cAdvisor, containerd's
 *     stats): every second, read each container's cgroup files and /proc/<pid>/net/dev of its
 *     process; every 10 s, walk each writable layer, fstatat on every entry.
 *
 * A simulated container is what tally's discovery and layer lookup see of a real one: a cgroup
 * <cgroup2>/tally-bench-<pid>-agent/kubepods/besteffort/pod<uid>/<64 hex> (two per pod), one
 * sleeping process in it that has its own mount namespace whose root is an overlay (a shared
 * image layer below, an upper dir of its own with a few hundred files), and the same process
 * in cgroup v1 memory, blkio and pids groups for the baseline's files (this host is hybrid:
 * cgroup2 has no controllers). A few pods also get a network namespace and a veth to the host.
 *
 * Everything is named after the pid (cgroups tally-bench-<pid>-agent, a tmpfs and a bpffs at
 * /dev/shm/tally-bench-<pid>-*, veths ta<pid>p<n>) and removed on every exit path: normal end,
 * failure, and SIGINT/SIGTERM/SIGHUP (taken by a thread of its own). The overlays live in the
 * sleepers' mount namespaces and go with them; the network namespaces too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "bench.h"
#include "cpu.h"
#include "discovery.h"
#include "util.h"

#define TALLY_BIN      "build/tally"
#define MAX_CONTAINERS 1000
#define PER_POD	       2 /* containers per pod, each with a process and a layer of its own */
#define MAX_PODS       (MAX_CONTAINERS / PER_POD)
/* Pods with a network namespace and a veth: tally attaches tc to each (~17 ms here). */
#define NETNS_PODS 10
/* Each writable layer: LAYER_DIRS directories of LAYER_FILES files, one in ten with 100 bytes. */
#define LAYER_DIRS  10
#define LAYER_FILES 25
#define IMAGE_FILES 50
#define WARM_S	    8  /* after the agent's first collection, before the window */
#define WINDOW_S    20 /* the steady window, for the agent and the baseline alike */
#define WALK_EVERY  10 /* the baseline walks every layer every this many seconds */
#define N_REQ	    200
#define READY_S	    30 /* a sleeper that is not ready by then has failed */
#define START_S	    120
#define STOP_S	    30
#define MAX_PROGS   32

static const int full_steps[] = {100, 1000};
#define MAX_STEPS ((int)(sizeof(full_steps) / sizeof(full_steps[0])))
/* --smoke: one small step and short windows, to try the benchmark itself out. */
static const int smoke_steps[] = {20};
static const int *steps = full_steps;
static int n_steps = MAX_STEPS, window_s = WINDOW_S, warm_s = WARM_S, n_req = N_REQ;

enum { V1_MEMORY, V1_BLKIO, V1_PIDS, N_V1 };
static const char *const v1_ctrl[N_V1] = {"memory", "blkio", "pids"};

/* What the baseline reads of each container every second. */
enum {
	F_CPU,	  /* cgroup v2 cpu.stat */
	F_MEMCUR, /* memory.usage_in_bytes: v2 memory.current */
	F_MEMSTAT,
	F_IO,	/* blkio.throttle.io_service_bytes: v2 io.stat */
	F_PIDS, /* pids.current */
	F_NETDEV,
	N_FILES
};

struct container {
	char *cg;	       /* cgroup v2 directory */
	char *v1[N_V1];	       /* cgroup v1 directories */
	char *procs[1 + N_V1]; /* their cgroup.procs files */
	char *files[N_FILES];
	char *upper; /* on the host, as the baseline walks it */
	char *opts;  /* overlay mount options */
	char *merged;
	pid_t pid;
};

static struct container cs[MAX_CONTAINERS];
static int n_cs;
static pid_t pod_pid[MAX_PODS]; /* the pod's first container: its netns for the second */

/*
 * What this benchmark created, for cleanup, besides the guard's children and cgroups (see
 * bench.h); creation and cleanup hold the guard's lock.
 */
static struct {
	char top[PATH_MAX + 64];	 /* <cgroup2>/tally-bench-<pid>-agent */
	char v1top[N_V1][PATH_MAX + 64]; /* /sys/fs/cgroup/<ctrl>/tally-bench-<pid>-agent */
	char base[PATH_MAX];		 /* a tmpfs of our own: image, upper and work dirs */
	bool base_mounted;
	char bpffs[PATH_MAX]; /* a bpffs instance of our own, when tally has --bpffs */
	bool bpffs_mounted;
	char pins[PATH_MAX + 8]; /* <bpffs>/tally, given to --bpffs */
	char log[PATH_MAX];
	char sock[PATH_MAX]; /* given to --socket */
	char devs[NETNS_PODS][IF_NAMESIZE];
	int n_devs;
	pid_t agent;
	int stats_fd;
} g = {.stats_fd = -1};

static char cgroot[PATH_MAX];
static bool has_bpffs; /* `tally agent` knows --bpffs */

/* --- children --- */

/* Wait at most ms for pid to exit; true when it did (and is reaped). */
static bool kid_wait_for(pid_t pid, unsigned ms, int *status)
{
	for (unsigned t = 0; t <= ms; t += 10) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD)) {
			bench__forget(pid);
			return true;
		}
		bench__sleep_ms(10);
	}
	return false;
}

/* --- the agent --- */

/* `tally agent --cleanup --bpffs DIR`: remove the pins a stopped agent left. Exit status. */
static int agent_cleanup_pins(void)
{
	const char *argv[] = {TALLY_BIN, "agent", "--cleanup", "--bpffs", g.pins, NULL};

	return bench__run(argv, -1);
}

/* SIGTERM, then SIGKILL after STOP_S. Wall ms of the stop, or -1 when it had to be killed. */
static double agent_stop(void)
{
	uint64_t t0 = clock__monotonic_ns();
	pid_t pid = g.agent;
	int status = 0;

	if (pid <= 0)
		return 0;
	kill(pid, SIGTERM);
	if (!kid_wait_for(pid, STOP_S * 1000, &status)) {
		kill(pid, SIGKILL);
		bench__wait(pid);
		g.agent = 0;
		return -1;
	}
	g.agent = 0;
	return (clock__monotonic_ns() - t0) / 1e6;
}

/* --- cleanup --- */

/* The guard's callback (bench.h). */
static void agent_cleanup(bool owner)
{
	/* The agent first, by SIGTERM, so that it detaches what it attached. */
	agent_stop();
	if (g.stats_fd >= 0)
		close(g.stats_fd);
	g.stats_fd = -1;
	/* The sleepers: their mount and network namespaces (overlays, veths) go with them. */
	bench__kill_all();
	bench__links_del(g.devs, g.n_devs);
	g.n_devs = 0;
	if (g.bpffs_mounted) {
		if (access(g.pins, F_OK) == 0 && agent_cleanup_pins())
			fprintf(stderr,
				"agent: tally agent --cleanup --bpffs %s failed; unmounting "
				"the bpffs instance anyway\n",
				g.pins);
		umount2(g.bpffs, MNT_DETACH);
		g.bpffs_mounted = false;
	}
	if (g.bpffs[0])
		rmdir(g.bpffs);
	g.bpffs[0] = '\0';
	bench__cgroups_remove();
	if (g.base_mounted) {
		umount2(g.base, MNT_DETACH);
		g.base_mounted = false;
	}
	if (g.base[0])
		rmdir(g.base);
	g.base[0] = '\0';
	if (g.log[0])
		unlink(g.log);
	g.log[0] = '\0';
	/* The agent removes it at exit; not when it had to be killed. Its lock file stays. */
	if (g.sock[0]) {
		unlink(g.sock);
		unlink(bench__asprintf("%s.lock", g.sock));
	}
	g.sock[0] = '\0';
}

/* --- simulated containers --- */

/* Files under dirfd: n of them, one in ten with 100 bytes (tmpfs gives it a page). */
static void make_files(int dirfd, int n)
{
	static const char data[100] = {'x'};
	char name[16];

	for (int i = 0; i < n; i++) {
		int fd;

		snprintf(name, sizeof(name), "f%d", i);
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			bench__die("create a layer file", errno);
		if (i % 10 == 0 && write(fd, data, sizeof(data)) != sizeof(data))
			bench__die("write a layer file", errno);
		close(fd);
	}
}

static int mkdir_open(int at, const char *name)
{
	int fd;

	if (mkdirat(at, name, 0755))
		bench__die("create a layer directory", errno);
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		bench__die("open a layer directory", errno);
	return fd;
}

/* Container k's directories (upper with its files, work, merged) and its paths. */
static void layer_create(int k)
{
	struct container *c = &cs[k];
	char name[32];
	int cfd, ufd;

	snprintf(name, sizeof(name), "c%d", k);
	{
		int bfd = open(g.base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (bfd < 0)
			bench__die("open the tmpfs", errno);
		cfd = mkdir_open(bfd, name);
		close(bfd);
	}
	ufd = mkdir_open(cfd, "upper");
	for (int d = 0; d < LAYER_DIRS; d++) {
		char dn[16];
		int dfd;

		snprintf(dn, sizeof(dn), "d%d", d);
		dfd = mkdir_open(ufd, dn);
		make_files(dfd, LAYER_FILES);
		close(dfd);
	}
	close(ufd);
	if (mkdirat(cfd, "work", 0755) || mkdirat(cfd, "merged", 0755))
		bench__die("create a layer directory", errno);
	close(cfd);
	c->upper = bench__asprintf("%s/%s/upper", g.base, name);
	c->merged = bench__asprintf("%s/%s/merged", g.base, name);
	c->opts = bench__asprintf("lowerdir=%s/image,upperdir=%s,workdir=%s/%s/work", g.base,
				  c->upper, g.base, name);
}

/*
 * The sleeper: in its cgroups, in its pod's network namespace (a new one for the pod's first
 * container, the first one's for the second), with a mount namespace of its own whose root is
 * the container's overlay, as runc leaves a container's process. Reports one byte on ready:
 * 'R', or the step that failed.
 */
static void sleeper_run(int k, int ready, int netns, const char *join)
{
	const struct container *c = &cs[k];
	char pid[24];
	int fd;

	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (bench__write_str(c->procs[0], pid))
		goto fail_c;
	for (int i = 1; i <= N_V1; i++)
		if (bench__write_str(c->procs[i], pid))
			goto fail_v;
	if (netns == 1 && unshare(CLONE_NEWNET))
		goto fail_n;
	if (netns == 2) {
		fd = open(join, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET))
			goto fail_n;
		close(fd);
	}
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		goto fail_m;
	if (mount("overlay", c->merged, "overlay", 0, c->opts))
		goto fail_o;
	if (chroot(c->merged) || chdir("/"))
		goto fail_r;
	if (write(ready, "R", 1) != 1)
		_exit(4);
	close(ready);
	for (;;)
		pause();
fail_c:
	(void)!write(ready, "c", 1);
	_exit(3);
fail_v:
	(void)!write(ready, "v", 1);
	_exit(3);
fail_n:
	(void)!write(ready, "n", 1);
	_exit(3);
fail_m:
	(void)!write(ready, "m", 1);
	_exit(3);
fail_o:
	(void)!write(ready, "o", 1);
	_exit(3);
fail_r:
	(void)!write(ready, "r", 1);
	_exit(3);
}

/* Wait for count sleepers to report ready; die naming the step one failed at. */
static void wait_ready(int fd, int count)
{
	static const char *const steps_[] = {
	    ['c'] = "enter its cgroup v2", ['v'] = "enter its cgroup v1 groups",
	    ['n'] = "enter its netns",	   ['m'] = "unshare its mount namespace",
	    ['o'] = "mount its overlay",   ['r'] = "chroot into its overlay",
	};
	unsigned char s = (unsigned char)bench__wait_ready(fd, count, READY_S,
							   "start the containers' processes", "R");

	if (s) {
		fprintf(stderr, "bench: a container's process failed to %s\n",
			s < sizeof(steps_) / sizeof(steps_[0]) && steps_[s] ? steps_[s] : "start");
		bench__die("start the containers' processes", EIO);
	}
}

/* Containers [n_cs, n): layers, cgroups, sleepers; veths for the first NETNS_PODS pods. */
static void containers_grow(int n)
{
	int first = n_cs, self = (int)getpid(), ready[2], new_dev = g.n_devs;
	uint64_t t0 = clock__monotonic_ns();
	char text[NETNS_PODS * 160 + 1];
	size_t len = 0;

	fprintf(stderr, "agent: creating containers %d to %d\n", first, n - 1);
	bench__lock();
	for (int k = first; k < n; k++) {
		struct container *c = &cs[k];
		int pod = k / PER_POD;

		layer_create(k);
		if (k % PER_POD == 0)
			bench__cg_make(
			    bench__asprintf("%s/kubepods/besteffort/pod%08x-0000-4000-8000-%012x",
					    g.top, self, pod));
		c->cg = bench__asprintf("%s/kubepods/besteffort/pod%08x-0000-4000-8000-%012x/"
					"%08x%04x%052x",
					g.top, self, pod, self, k % PER_POD, pod);
		bench__cg_make(bench__asprintf("%s", c->cg));
		for (int i = 0; i < N_V1; i++) {
			c->v1[i] = bench__asprintf("%s/c%d", g.v1top[i], k);
			bench__cg_make(bench__asprintf("%s", c->v1[i]));
		}
		c->procs[0] = bench__asprintf("%s/cgroup.procs", c->cg);
		for (int i = 0; i < N_V1; i++)
			c->procs[1 + i] = bench__asprintf("%s/cgroup.procs", c->v1[i]);
		c->files[F_CPU] = bench__asprintf("%s/cpu.stat", c->cg);
		c->files[F_MEMCUR] = bench__asprintf("%s/memory.usage_in_bytes", c->v1[V1_MEMORY]);
		c->files[F_MEMSTAT] = bench__asprintf("%s/memory.stat", c->v1[V1_MEMORY]);
		c->files[F_IO] =
		    bench__asprintf("%s/blkio.throttle.io_service_bytes", c->v1[V1_BLKIO]);
		c->files[F_PIDS] = bench__asprintf("%s/pids.current", c->v1[V1_PIDS]);
	}
	/* The pods' first containers, then their second ones (which may join the first's netns). */
	for (int j = 0; j < PER_POD; j++) {
		int count = 0;

		if (pipe2(ready, O_CLOEXEC))
			bench__die("create a pipe", errno);
		for (int k = first; k < n; k++) {
			int pod = k / PER_POD, netns = 0;
			char join[48];

			if (k % PER_POD != j)
				continue;
			if (pod < NETNS_PODS)
				netns = j == 0 ? 1 : 2;
			snprintf(join, sizeof(join), "/proc/%d/ns/net", (int)pod_pid[pod]);
			cs[k].pid = bench__fork(-1, -1, ready[1], -1);
			if (cs[k].pid == 0)
				sleeper_run(k, ready[1], netns, join);
			if (j == 0)
				pod_pid[pod] = cs[k].pid;
			cs[k].files[F_NETDEV] = bench__asprintf("/proc/%d/net/dev", (int)cs[k].pid);
			count++;
		}
		close(ready[1]);
		wait_ready(ready[0], count);
		close(ready[0]);
	}
	for (int pod = first / PER_POD; pod < n / PER_POD && pod < NETNS_PODS; pod++) {
		snprintf(g.devs[g.n_devs], IF_NAMESIZE, "ta%dp%d", self, pod);
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"link add %s type veth peer name eth0 netns %d\n",
					g.devs[g.n_devs], (int)pod_pid[pod]);
		g.n_devs++;
	}
	if (len && bench__ip_batch(text, len, false))
		bench__die("create the pods' veth pairs", EIO);
	len = 0;
	for (int i = new_dev; i < g.n_devs; i++) {
		/* No IPv6 autoconfiguration traffic through the programs during the window. */
		bench__ipv6_off(g.devs[i]);
		len +=
		    (size_t)snprintf(text + len, sizeof(text) - len, "link set %s up\n", g.devs[i]);
	}
	if (len && bench__ip_batch(text, len, false))
		bench__die("bring the pods' veths up", EIO);
	n_cs = n;
	bench__unlock();
	fprintf(stderr, "agent: %d containers created in %.1f s\n", n - first,
		(clock__monotonic_ns() - t0) / 1e9);
}

/* --- measuring a process --- */

/* utime + stime of a whole process, in clock ticks; 0 when gone. */
static uint64_t proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (bench__read_small(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')))
		return 0;
	/* after "pid (comm)": state is field 3, utime 14 and stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

static uint64_t cg_usage_us(const char *dir)
{
	uint64_t us = 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		cpustat__read_usage(fd, &us);
		close(fd);
	}
	return us;
}

/* VmRSS and VmHWM in KiB. */
static void proc_mem(pid_t pid, uint64_t *rss, uint64_t *hwm)
{
	char path[64], buf[4096], *p;

	*rss = *hwm = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (bench__read_small(path, buf, sizeof(buf)) <= 0)
		return;
	if ((p = strstr(buf, "VmRSS:")))
		*rss = strtoull(p + 6, NULL, 10);
	if ((p = strstr(buf, "VmHWM:")))
		*hwm = strtoull(p + 6, NULL, 10);
}

/* The BPF programs a process holds (by fd or through a link), each by a fd of ours. */
struct progs {
	int n;
	int fd[MAX_PROGS];
	uint32_t id[MAX_PROGS];
	char name[MAX_PROGS][64];
	uint64_t ns[MAX_PROGS], runs[MAX_PROGS];
};

/* A program's full name, from its BTF (bpf_prog_info.name stops at 15 characters). */
static void prog_name(int fd, char *out, size_t len)
{
	struct bpf_prog_info info = {};
	struct bpf_func_info fi = {};
	uint32_t ilen = sizeof(info);
	const struct btf_type *t;
	struct btf *btf;

	if (bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		snprintf(out, len, "?");
		return;
	}
	snprintf(out, len, "%s", info.name);
	if (!info.btf_id || !info.nr_func_info)
		return;
	info = (struct bpf_prog_info){.nr_func_info = 1,
				      .func_info_rec_size = sizeof(fi),
				      .func_info = (uint64_t)(uintptr_t)&fi};
	ilen = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		return;
	btf = btf__load_from_kernel_by_id(info.btf_id);
	if (!btf)
		return;
	t = btf__type_by_id(btf, fi.type_id);
	if (t)
		snprintf(out, len, "%s", btf__name_by_offset(btf, t->name_off));
	btf__free(btf);
}

static void progs_find(pid_t pid, struct progs *p)
{
	char dir[64], path[320], buf[1024];
	struct dirent *de;
	DIR *d;

	p->n = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", (int)pid);
	d = opendir(dir);
	if (!d)
		bench__die("list the agent's fds", errno);
	while ((de = readdir(d))) {
		const char *s;
		uint32_t id;
		bool seen = false;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (bench__read_small(path, buf, sizeof(buf)) <= 0 ||
		    !(s = strstr(buf, "prog_id:")))
			continue;
		id = (uint32_t)strtoul(s + 8, NULL, 10);
		for (int i = 0; i < p->n; i++)
			seen |= p->id[i] == id;
		if (seen || !id || p->n == MAX_PROGS)
			continue;
		p->fd[p->n] = bpf_prog_get_fd_by_id(id);
		if (p->fd[p->n] < 0)
			continue;
		prog_name(p->fd[p->n], p->name[p->n], sizeof(p->name[0]));
		p->id[p->n++] = id;
	}
	closedir(d);
}

static void progs_read(struct progs *p)
{
	for (int i = 0; i < p->n; i++)
		if (bench__prog_stats(p->fd[i], &p->ns[i], &p->runs[i]))
			p->ns[i] = p->runs[i] = 0;
}

/* Our fds only: names and figures stay. */
static void progs_close(struct progs *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->fd[i] >= 0)
			close(p->fd[i]);
	for (int i = 0; i < p->n; i++)
		p->fd[i] = -1;
}

/* --- HTTP --- */

static int http_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		bench__die("connect to the agent", errno);
	return fd;
}

struct resp {
	char *buf; /* headers and body, NUL-terminated */
	size_t len, cap, body;
	int status;
};

static void resp_grow(struct resp *r, size_t want)
{
	if (want + 1 <= r->cap)
		return;
	r->cap = want * 2 + 65536;
	r->buf = realloc(r->buf, r->cap);
	if (!r->buf)
		bench__die("allocate", ENOMEM);
}

/* One GET on a keep-alive connection; the answer (status, body from r->body) in r. */
static void http_get(int fd, const char *path, bool gzip, struct resp *r)
{
	char req[256];
	size_t clen = 0, hend = 0;
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path,
			 gzip ? "Accept-Encoding: gzip\r\n" : "");

	if (write(fd, req, (size_t)n) != n)
		bench__die("send a request to the agent", errno);
	r->len = 0;
	for (;;) {
		ssize_t got;
		char *e;

		resp_grow(r, r->len + 65536);
		got = read(fd, r->buf + r->len, r->cap - r->len - 1);
		if (got <= 0)
			bench__die("read the agent's answer", got ? errno : EPIPE);
		r->len += (size_t)got;
		r->buf[r->len] = '\0';
		if (!hend && (e = strstr(r->buf, "\r\n\r\n"))) {
			const char *cl;

			hend = (size_t)(e - r->buf) + 4;
			r->status = atoi(r->buf + 9);
			for (cl = r->buf; (cl = strchr(cl, '\n')) && cl < e; cl++)
				if (!strncasecmp(cl + 1, "Content-Length:", 15))
					clen = strtoull(cl + 16, NULL, 10);
			if (!clen && r->status == 200)
				bench__die("read the agent's answer (no Content-Length)", EPROTO);
		}
		if (hend && r->len >= hend + clen)
			break;
	}
	r->body = hend;
}

/* One request on a fresh connection, status 200 or die. */
static void http_get_once(int port, const char *path, struct resp *r)
{
	int fd = http_connect(port);

	http_get(fd, path, false, r);
	close(fd);
	if (r->status != 200)
		bench__die("get an answer from the agent", EPROTO);
}

/* The value of a sample line "name value" (no labels) of Prometheus text; -1 when absent. */
static double metric_value(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; (p = strstr(p, name)); p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static size_t count_str(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

struct latency {
	const char *what;
	size_t bytes;
	uint64_t med, p99, max;
};

static void latency_measure(int port, const char *path, bool gzip, struct latency *out)
{
	uint64_t t[N_REQ];
	struct resp r = {};
	int fd = http_connect(port);

	for (int i = 0; i < n_req; i++) {
		uint64_t t0 = clock__monotonic_ns();

		http_get(fd, path, gzip, &r);
		t[i] = clock__monotonic_ns() - t0;
		if (r.status != 200)
			bench__die("get an answer from the agent", EPROTO);
	}
	close(fd);
	out->bytes = r.len - r.body;
	out->med = bench__median(t, n_req); /* sorts t */
	out->p99 = t[n_req * 99 / 100];
	out->max = t[n_req - 1];
	free(r.buf);
}

/* --- the baseline --- */

struct base_res {
	uint64_t tick_ns[WINDOW_S];
	uint64_t walk_ns[WINDOW_S / WALK_EVERY];
	uint64_t reads_ok, reads_failed, entries, walk_errors;
};

/* du-style: fstatat every entry below dir, directories walked with a stack of their own. */
static void walk(const char *dir, struct base_res *res)
{
	DIR *stack[16];
	int depth = 0, fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || !(stack[0] = fdopendir(fd))) {
		res->walk_errors++;
		return;
	}
	while (depth >= 0) {
		DIR *d = stack[depth];
		struct dirent *de = readdir(d);
		struct stat sb;

		if (!de) {
			closedir(d);
			depth--;
			continue;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW)) {
			res->walk_errors++;
			continue;
		}
		res->entries++;
		if (S_ISDIR(sb.st_mode) && depth + 1 < (int)(sizeof(stack) / sizeof(stack[0]))) {
			fd = openat(dirfd(d), de->d_name,
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 || !(stack[depth + 1] = fdopendir(fd))) {
				res->walk_errors++;
				continue;
			}
			depth++;
		}
	}
}

static void baseline_run(int n, struct base_res *res, int done)
{
	struct timespec next;
	char buf[16384];

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (int t = 0; t < window_s; t++) {
		uint64_t t0 = clock__monotonic_ns();

		if (t % WALK_EVERY == 0) {
			for (int k = 0; k < n; k++)
				walk(cs[k].upper, res);
			res->walk_ns[t / WALK_EVERY] = clock__monotonic_ns() - t0;
		}
		for (int k = 0; k < n; k++)
			for (int f = 0; f < N_FILES; f++) {
				int fd = open(cs[k].files[f], O_RDONLY | O_CLOEXEC);
				ssize_t r = -1;

				if (fd >= 0) {
					while ((r = read(fd, buf, sizeof(buf))) > 0)
						;
					close(fd);
				}
				if (r == 0)
					res->reads_ok++;
				else
					res->reads_failed++;
			}
		res->tick_ns[t] = clock__monotonic_ns() - t0;
		next.tv_sec++;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	if (write(done, "d", 1) != 1)
		_exit(4);
	for (;;)
		pause();
}

/* --- one step --- */

struct row {
	int n, cgroups;
	double start_s, stop_ms;
	int seen_layers, seen_eth0;
	/* the agent over the window */
	double cpu_ticks_ms, cpu_cg_ms, bpf_ms, coll_ms;
	uint64_t bpf_runs, rss, hwm, rss_after, hwm_after, index_bytes;
	struct progs progs;	   /* names and deltas */
	struct latency lat[3];	   /* /metrics, /metrics gzip, /v1/containers */
	int pins_left, cleanup_rc; /* with --bpffs */
	/* the baseline over the same length of window */
	double base_ticks_ms, base_cg_ms;
	struct base_res base;
};

static int count_cgroups(const char *dir)
{
	struct cg_tree t = {};
	int n = 0;

	if (!cg_tree__walk(&t, dir))
		n = (int)t.n;
	cg_tree__free(&t);
	return n;
}

static int count_pins(const char *dir)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		if (de->d_type == DT_DIR) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			n += count_pins(path);
		}
	}
	closedir(d);
	return n;
}

/*
 * Start the agent in a cgroup namespace rooted at the benchmark's cgroup, with that namespace's
 * cgroup2 mounted instead of the host's in a mount namespace of its own (the kernel refuses the
 * same filesystem stacked on the same mount point): it sees this benchmark's
 * containers and none of the tests that other people run on this machine meanwhile. Those put
 * their containers' upper dirs on /dev/shm or the root filesystem, and tally's fanotify mark on
 * that filesystem would then charge the agent for every scratch write there.
 */
static void agent_start(int *port)
{
	char top_procs[PATH_MAX + 128], agent_procs[PATH_MAX + 128], log[1 << 14], *p;
	int fd, status;

	snprintf(top_procs, sizeof(top_procs), "%s/cgroup.procs", g.top);
	snprintf(agent_procs, sizeof(agent_procs), "%s/agent/cgroup.procs", cgroot);
	fd = open(g.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		bench__die("create the agent's log", errno);
	bench__lock();
	g.agent = bench__fork(-1, fd, -1, -1);
	if (g.agent == 0) {
		char pid[24];
		const char *argv[] = {TALLY_BIN,  "agent", "--listen", "127.0.0.1:0",
				      "--period", "1s",	   "--socket", g.sock,
				      "--bpffs",  g.pins,  NULL};

		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (bench__write_str(top_procs, pid) || unshare(CLONE_NEWCGROUP | CLONE_NEWNS) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    umount2(cgroot, MNT_DETACH) || mount("cgroup2", cgroot, "cgroup2", 0, NULL) ||
		    bench__write_str(agent_procs, pid)) {
			fprintf(stderr,
				"bench: failed to give the agent its cgroup namespace: %s\n",
				strerror(errno));
			_exit(126);
		}
		if (!has_bpffs)
			argv[8] = NULL;
		execv(TALLY_BIN, (char *const *)argv);
		_exit(127);
	}
	bench__unlock();
	close(fd);
	for (int i = 0; i < START_S * 50; i++) {
		if (bench__read_small(g.log, log, sizeof(log)) >= 0 &&
		    (p = strstr(log, "listening on 127.0.0.1:"))) {
			*port = atoi(p + strlen("listening on 127.0.0.1:"));
			if (*port > 0)
				return;
		}
		if (waitpid(g.agent, &status, WNOHANG) == g.agent) {
			bench__forget(g.agent);
			g.agent = 0;
			fprintf(stderr, "%s", log);
			bench__die("start tally agent (its log is above)", ECHILD);
		}
		bench__sleep_ms(20);
	}
	bench__die("start tally agent", ETIMEDOUT);
}

static void step_run(int n, struct row *w)
{
	char base_cg[PATH_MAX + 96], base_procs[PATH_MAX + 128], agent_cg[PATH_MAX + 96];
	char needle[PATH_MAX + 32];
	struct progs p0 = {};
	struct resp r = {};
	uint64_t t0, ticks0, cg0, wall, hz = (uint64_t)sysconf(_SC_CLK_TCK);
	double coll_sum0, coll_n0;
	int port, done[2];
	pid_t base;

	memset(w, 0, sizeof(*w));
	w->n = n;
	snprintf(agent_cg, sizeof(agent_cg), "%s/agent", g.top);
	snprintf(base_cg, sizeof(base_cg), "%s/baseline", g.top);
	snprintf(base_procs, sizeof(base_procs), "%s/cgroup.procs", base_cg);

	/* The agent: start, warm up, check what it sees. */
	fprintf(stderr, "agent: %d containers: tally agent, %d s warm-up then %d s window\n", n,
		warm_s, window_s);
	t0 = clock__monotonic_ns();
	agent_start(&port);
	w->start_s = (clock__monotonic_ns() - t0) / 1e9;
	bench__sleep_ms((unsigned)warm_s * 1000);
	http_get_once(port, "/v1/containers", &r);
	snprintf(needle, sizeof(needle), "\"upperdir\":\"%s/c", g.base);
	w->seen_layers = (int)count_str(r.buf + r.body, needle);
	http_get_once(port, "/v1/pods", &r);
	{
		char uid[64];

		snprintf(uid, sizeof(uid), "\"uid\":\"%08x-", (int)getpid());
		for (const char *q = r.buf + r.body; (q = strstr(q, uid)); q++) {
			const char *di = strstr(q, "\"default_interface\":");

			if (di && strncmp(di + 20, "null", 4))
				w->seen_eth0++;
		}
	}
	w->cgroups = count_cgroups(g.top);

	/* The window: nothing asks the agent anything meanwhile. */
	g.stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (g.stats_fd < 0)
		bench__die("enable bpf_stats", g.stats_fd);
	http_get_once(port, "/metrics", &r);
	coll_sum0 = metric_value(r.buf + r.body, "tally_collection_duration_seconds_sum");
	coll_n0 = metric_value(r.buf + r.body, "tally_collection_duration_seconds_count");
	progs_find(g.agent, &p0);
	w->progs = p0;
	progs_read(&p0);
	t0 = clock__monotonic_ns();
	ticks0 = proc_cpu_ticks(g.agent);
	cg0 = cg_usage_us(agent_cg);
	bench__sleep_ms((unsigned)window_s * 1000);
	w->cpu_ticks_ms = (proc_cpu_ticks(g.agent) - ticks0) * 1000.0 / (double)hz;
	w->cpu_cg_ms = (cg_usage_us(agent_cg) - cg0) / 1000.0;
	progs_read(&w->progs);
	wall = clock__monotonic_ns() - t0;
	proc_mem(g.agent, &w->rss, &w->hwm);
	close(g.stats_fd);
	g.stats_fd = -1;
	for (int i = 0; i < w->progs.n; i++) {
		w->progs.ns[i] -= p0.ns[i];
		w->progs.runs[i] -= p0.runs[i];
		w->bpf_ms += w->progs.ns[i] / 1e6;
		w->bpf_runs += w->progs.runs[i];
	}
	/* per second of window */
	w->cpu_ticks_ms /= wall / 1e9;
	w->cpu_cg_ms /= wall / 1e9;
	w->bpf_ms /= wall / 1e9;
	http_get_once(port, "/metrics", &r);
	{
		double s = metric_value(r.buf + r.body, "tally_collection_duration_seconds_sum");
		double c = metric_value(r.buf + r.body, "tally_collection_duration_seconds_count");

		w->coll_ms = c > coll_n0 ? (s - coll_sum0) * 1e3 / (c - coll_n0) : -1;
		w->index_bytes = (uint64_t)metric_value(r.buf + r.body, "tally_disk_index_bytes");
	}

	/* Latency, while the agent keeps collecting every second. */
	fprintf(stderr, "agent: %d containers: %d requests to each endpoint\n", n, n_req);
	w->lat[0].what = "/metrics";
	latency_measure(port, "/metrics", false, &w->lat[0]);
	w->lat[1].what = "/metrics, Accept-Encoding: gzip";
	latency_measure(port, "/metrics", true, &w->lat[1]);
	w->lat[2].what = "/v1/containers";
	latency_measure(port, "/v1/containers", false, &w->lat[2]);
	proc_mem(g.agent, &w->rss_after, &w->hwm_after);
	free(r.buf);

	bench__lock();
	w->stop_ms = agent_stop();
	bench__unlock();
	if (has_bpffs) {
		w->pins_left = count_pins(g.pins);
		w->cleanup_rc = agent_cleanup_pins();
	}

	/* The baseline, in a child in a cgroup of its own, over the same containers. */
	fprintf(stderr, "agent: %d containers: baseline collector, %d s\n", n, window_s);
	{
		struct base_res *res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
					    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		char c;

		if (res == MAP_FAILED)
			bench__die("map the baseline's results", errno);
		memset(res, 0, sizeof(*res));
		if (pipe2(done, O_CLOEXEC))
			bench__die("create a pipe", errno);
		bench__lock();
		base = bench__fork(-1, -1, done[1], -1);
		if (base == 0) {
			char pid[24];

			snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
			if (bench__write_str(base_procs, pid))
				_exit(126);
			baseline_run(n, res, done[1]);
		}
		bench__unlock();
		close(done[1]);
		t0 = clock__monotonic_ns();
		while (read(done[0], &c, 1) < 0 && errno == EINTR)
			;
		w->base_ticks_ms = proc_cpu_ticks(base) * 1000.0 / (double)hz / window_s;
		w->base_cg_ms = cg_usage_us(base_cg) / 1000.0 / window_s;
		close(done[0]);
		kill(base, SIGKILL);
		bench__wait(base);
		w->base = *res;
		munmap(res, sizeof(*res));
	}
	progs_close(&w->progs);
}

/* --- report --- */

static void print_report(const struct row *rows)
{
	const struct row *big = &rows[n_steps - 1];

	printf("### 1. The agent against a baseline collector, %d s steady window (tally agent "
	       "--period 1s, after %d s of warm-up)\n\n",
	       window_s, warm_s);
	printf(
	    "| containers | cgroups the agent walks | agent CPU ms/s (/proc stat) | agent CPU ms/s "
	    "(cpu.stat) | %% of one core | BPF run time ms/s | VmRSS MiB | VmHWM MiB | "
	    "collection ms (mean) | baseline CPU ms/s (/proc stat) | baseline CPU ms/s "
	    "(cpu.stat) | baseline / agent | baseline / (agent + BPF) |\n");
	printf(
	    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
	    "---: |\n");
	for (int i = 0; i < n_steps; i++) {
		const struct row *w = &rows[i];

		printf(
		    "| %d | %d | %.2f | %.2f | %.2f%% | %.2f | %.1f | %.1f | %.2f | %.1f | %.1f | "
		    "%.1fx | %.1fx |\n",
		    w->n, w->cgroups, w->cpu_ticks_ms, w->cpu_cg_ms, w->cpu_cg_ms / 10.0, w->bpf_ms,
		    w->rss / 1024.0, w->hwm / 1024.0, w->coll_ms, w->base_ticks_ms, w->base_cg_ms,
		    w->base_cg_ms / w->cpu_cg_ms, w->base_cg_ms / (w->cpu_cg_ms + w->bpf_ms));
	}
	printf("\nWhat the agent saw after the warm-up: ");
	for (int i = 0; i < n_steps; i++)
		printf("%s%d of %d containers with their writable layer, %d of %d pods with their "
		       "eth0",
		       i ? "; " : "", rows[i].seen_layers, rows[i].n, rows[i].seen_eth0,
		       rows[i].n / PER_POD < NETNS_PODS ? rows[i].n / PER_POD : NETNS_PODS);
	printf(". Its disk index: ");
	for (int i = 0; i < n_steps; i++)
		printf("%s%.1f MiB at %d", i ? ", " : "", rows[i].index_bytes / 1048576.0,
		       rows[i].n);
	printf(" (tally_disk_index_bytes). After the latency runs below: ");
	for (int i = 0; i < n_steps; i++)
		printf("%sVmRSS %.1f MiB, VmHWM %.1f MiB at %d", i ? "; " : "",
		       rows[i].rss_after / 1024.0, rows[i].hwm_after / 1024.0, rows[i].n);
	printf(".\n\n");

	printf("BPF programs of the agent over the window at %d containers (bpf_stats; they run "
	       "in whatever task switches or sends, so they follow the machine's load, not the "
	       "number of containers):\n\n",
	       big->n);
	printf("| program | runs/s | ns per run | ms/s |\n| --- | ---: | ---: | ---: |\n");
	for (int i = 0; i < big->progs.n; i++) {
		const struct progs *p = &big->progs;

		printf("| %s | %.0f | %.0f | %.3f |\n", p->name[i], p->runs[i] / (double)window_s,
		       p->runs[i] ? (double)p->ns[i] / (double)p->runs[i] : 0.0,
		       p->ns[i] / 1e6 / window_s);
	}

	printf("\n### 2. HTTP latency over loopback (%d requests each on one keep-alive "
	       "connection, back to back, while the agent collects every second; ms)\n\n",
	       n_req);
	printf("| containers | endpoint | body bytes | median | p99 | max |\n");
	printf("| ---: | --- | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < n_steps; i++)
		for (int j = 0; j < 3; j++) {
			const struct latency *l = &rows[i].lat[j];

			printf("| %d | %s | %zu | %.2f | %.2f | %.2f |\n", rows[i].n, l->what,
			       l->bytes, l->med / 1e6, l->p99 / 1e6, l->max / 1e6);
		}

	printf("\n### 3. The baseline's work (a child process, the same containers, %d s)\n\n",
	       window_s);
	printf("| containers | files read per second | failed | one read pass ms (median) | "
	       "entries per walk | the two walks, ms | walk errors |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < n_steps; i++) {
		struct base_res b = rows[i].base;
		uint64_t pass[WINDOW_S];

		/* tick_ns includes the walk on walking ticks: the pass alone on the others */
		int np = 0;

		for (int t = 0; t < window_s; t++)
			if (t % WALK_EVERY)
				pass[np++] = b.tick_ns[t];
		printf("| %d | %.0f | %llu | %.2f | %.0f | %.1f, %.1f | %llu |\n", rows[i].n,
		       (double)(b.reads_ok + b.reads_failed) / window_s,
		       (unsigned long long)b.reads_failed, bench__median(pass, np) / 1e6,
		       (double)b.entries / ((window_s + WALK_EVERY - 1) / WALK_EVERY),
		       b.walk_ns[0] / 1e6, b.walk_ns[1] / 1e6, (unsigned long long)b.walk_errors);
	}

	printf("\nStart and stop of the agent: ");
	for (int i = 0; i < n_steps; i++) {
		const struct row *w = &rows[i];

		printf("%s%d containers: %.2f s from exec to its first collection served, ",
		       i ? "; " : "", w->n, w->start_s);
		if (w->stop_ms < 0)
			printf("did not stop in %d s after SIGTERM (killed)", STOP_S);
		else
			printf("%.0f ms from SIGTERM to exit", w->stop_ms);
		if (has_bpffs)
			printf(", %d pins left for a restart, tally agent --cleanup exit %d",
			       w->pins_left, w->cleanup_rc);
	}
	printf(".\n");
	fflush(stdout);
}

int bench_agent(int argc, char **argv)
{
	struct row rows[MAX_STEPS];
	uint64_t t_start = clock__monotonic_ns();
	int err, self = (int)getpid(), hold = 0;

	if (argc > 1 && !strcmp(argv[1], "--smoke")) {
		steps = smoke_steps;
		n_steps = 1;
		window_s = 4;
		warm_s = 3;
		n_req = 20;
	} else if (argc > 2 && !strcmp(argv[1], "--hold")) {
		hold = atoi(argv[2]);
		if (hold < 1 || hold > MAX_CONTAINERS) {
			fprintf(stderr, "--hold: 1 to %d containers\n", MAX_CONTAINERS);
			return 2;
		}
	} else if (argc > 1) {
		fprintf(stderr,
			"usage: bench-tally agent [--smoke | --hold N]\n"
			"  --smoke   one step of 20 containers and short windows\n"
			"  --hold N  create N containers, start the agent, print its pid and "
			"port, and keep everything until SIGINT or SIGTERM (for perf)\n");
		return 2;
	}
	if (access(TALLY_BIN, X_OK))
		bench__die("find " TALLY_BIN " (run from the repository root after make)", errno);
	err = cgroup2__find_mount_file("/proc/self/mountinfo", cgroot, sizeof(cgroot));
	if (err)
		bench__die("find the cgroup2 mount", err);
	{
		/* --bpffs: pins in an instance of our own, removed with --cleanup and unmounted. */
		char help[8192];
		int fds[2];
		const char *argv_[] = {TALLY_BIN, "agent", "--help", NULL};

		if (pipe2(fds, O_CLOEXEC))
			bench__die("create a pipe", errno);
		bench__run(argv_, fds[1]);
		close(fds[1]);
		ssize_t n = read(fds[0], help, sizeof(help) - 1);

		close(fds[0]);
		help[n > 0 ? n : 0] = '\0';
		has_bpffs = strstr(help, "--bpffs") != NULL;
	}

	bench__guard_start("agent", agent_cleanup);
	bench__lock();
	snprintf(g.top, sizeof(g.top), "%s/tally-bench-%d-agent", cgroot, self);
	bench__cg_make(bench__asprintf("%s", g.top));
	bench__cg_make(bench__asprintf("%s/agent", g.top));
	bench__cg_make(bench__asprintf("%s/baseline", g.top));
	bench__cg_make(bench__asprintf("%s/kubepods", g.top));
	bench__cg_make(bench__asprintf("%s/kubepods/besteffort", g.top));
	for (int i = 0; i < N_V1; i++) {
		snprintf(g.v1top[i], sizeof(g.v1top[i]), "/sys/fs/cgroup/%s/tally-bench-%d-agent",
			 v1_ctrl[i], self);
		bench__cg_make(bench__asprintf("%s", g.v1top[i]));
	}
	snprintf(g.log, sizeof(g.log), "/dev/shm/tally-bench-%d-agent.log", self);
	/* Not the default socket: an agent already serving there (a DaemonSet's, another run's)
	 * would make this one exit. */
	snprintf(g.sock, sizeof(g.sock), "/dev/shm/tally-bench-%d-agent.sock", self);
	/*
	 * The layers on a tmpfs of our own: tally's fanotify filesystem mark then sees our
	 * containers' writes only, not the rest of the machine's.
	 */
	snprintf(g.base, sizeof(g.base), "/dev/shm/tally-bench-%d-layers", self);
	if (mkdir(g.base, 0755))
		bench__die("create the layers' directory", errno);
	if (mount("tmpfs", g.base, "tmpfs", 0, "size=1g,mode=0755"))
		bench__die("mount a tmpfs for the layers", errno);
	g.base_mounted = true;
	if (has_bpffs) {
		snprintf(g.bpffs, sizeof(g.bpffs), "/dev/shm/tally-bench-%d-bpffs", self);
		snprintf(g.pins, sizeof(g.pins), "%s/tally", g.bpffs);
		if (mkdir(g.bpffs, 0700))
			bench__die("create the bpffs directory", errno);
		if (mount("bpf", g.bpffs, "bpf", 0, NULL))
			bench__die("mount a bpffs instance", errno);
		g.bpffs_mounted = true;
	}
	{
		char image[PATH_MAX + 8];
		int fd;

		snprintf(image, sizeof(image), "%s/image", g.base);
		fd = mkdir_open(AT_FDCWD, image);
		make_files(fd, IMAGE_FILES);
		close(fd);
	}
	bench__unlock();

	printf("## Agent (tally bench, %ld CPUs)\n\n", sysconf(_SC_NPROCESSORS_ONLN));
	printf("Each container: a cgroup kubepods/besteffort/pod<uid>/<id> (%d per pod), one "
	       "sleeping process with its own mount namespace whose root is an overlay (a shared "
	       "image layer of %d files, an upper dir of %d files in %d directories on a tmpfs), "
	       "and cgroup v1 memory, blkio and pids groups. The first %d pods have a network "
	       "namespace and a veth to the host. tally agent pins: %s.\n\n",
	       PER_POD, IMAGE_FILES, LAYER_DIRS * LAYER_FILES, LAYER_DIRS, NETNS_PODS,
	       has_bpffs ? "--bpffs in a bpffs instance of the benchmark's own"
			 : "no --bpffs in this build (everything detached on SIGTERM)");
	fflush(stdout);

	if (hold) {
		int port;

		containers_grow(hold);
		agent_start(&port);
		fprintf(stderr,
			"agent: pid %d listening on 127.0.0.1:%d with %d containers; stop with "
			"kill -INT %d\n",
			(int)g.agent, port, hold, self);
		for (;;)
			pause(); /* the signal thread cleans up and exits */
	}
	for (int i = 0; i < n_steps; i++) {
		containers_grow(steps[i]);
		step_run(steps[i], &rows[i]);
	}
	print_report(rows);

	fprintf(stderr, "agent: removing %d containers\n", n_cs);
	bench__guard_end();
	fprintf(stderr, "agent: done in %.1f s\n", (clock__monotonic_ns() - t_start) / 1e9);
	return 0;
}
