// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A containerd node of the test's own. Everything it makes is named after the test's pid:
 * the directory /tmp/tally-test-ctrd-<pid> (containerd's root, state, sockets, config, runc's
 * root, the CNI plugin's IP store), the containers "tally-test-<what>-<pid>" (so their cgroups
 * are /default/<id> in every hierarchy), the netns "tally-test-ctrd-<pid>" and the bridge
 * "tlycd<pid>". So the cleanup needs nothing but the pid, and the same code serves the suite's
 * .fini and the sweep of a test that crashed.
 *
 * What containerd 1.6 writes outside its root and state, whatever its config says: the
 * shims' sockets in /run/containerd/s (removed by each shim as it exits), and nothing else
 * with `--null-io` (no fifo dir) and `--runc-root` in the test directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "agent_helpers.h"
#include "containerd_helpers.h"
#include "discovery.h"
#include "helpers.h"

#define TASKS_DIR "state/io.containerd.runtime.v2.task/" CTRD_NS
#define CNI_PATH  "/usr/lib/cni"
#define BUSYBOX	  "/bin/busybox"

/* The node of this process, if it started one: the sweep waits for its own child. */
static pid_t own_containerd;

static void dir_of(int pid, char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/tally-test-ctrd-%d", pid);
}

static void write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t len = (ssize_t)strlen(s);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, s, len), len, "write %s: %s", path, strerror(errno));
	close(fd);
}

/* The first line of a file, without its newline; "" when it cannot be read. */
static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

/* A shell command for cleanup: no assertion, output discarded. */
static int quiet(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int quiet(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - 20, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	strcat(cmd, " >/dev/null 2>&1");
	return system(cmd);
}

static bool installed(const char *path, char *why, size_t len)
{
	if (!access(path, X_OK))
		return true;
	snprintf(why, len,
		 "%s is missing (Debian packages containerd, runc, "
		 "containernetworking-plugins, busybox-static: `make deps`)",
		 path);
	return false;
}

bool ctrd_available(char *why, size_t len)
{
	static const char *const need[] = {
	    "/usr/bin/containerd",
	    "/usr/bin/ctr",
	    "/usr/bin/containerd-shim-runc-v2",
	    "/usr/sbin/runc",
	    CNI_PATH "/bridge",
	    CNI_PATH "/host-local",
	    BUSYBOX,
	};
	char out[256];

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!installed(need[i], why, len))
			return false;
	/* The image has no libc: its busybox must be the static one. */
	if (th_run("dpkg-query -W -f='${Status}' busybox-static 2>/dev/null", out, sizeof(out)) ||
	    !strstr(out, "install ok installed")) {
		snprintf(why, len, "busybox-static is not installed (`make deps`)");
		return false;
	}
	return true;
}

int ctrd_ctr(const struct ctrd *c, char *out, size_t len, const char *fmt, ...)
{
	char args[2048], cmd[2560];
	va_list ap;

	va_start(ap, fmt);
	cr_assert_lt(vsnprintf(args, sizeof(args), fmt, ap), (int)sizeof(args));
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "timeout 60 ctr --address %s --namespace " CTRD_NS " %s 2>&1",
		 c->sock, args);
	return th_run(cmd, out, len);
}

static bool answers(const char *sock)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (strlen(sock) >= sizeof(sun.sun_path))
		return false;
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	ok = fd >= 0 && !connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (fd >= 0)
		close(fd);
	return ok;
}

static const char *goarch(void)
{
	static struct utsname u;

	cr_assert_eq(uname(&u), 0);
	if (!strcmp(u.machine, "x86_64"))
		return "amd64";
	if (!strcmp(u.machine, "aarch64"))
		return "arm64";
	return u.machine;
}

static void ctrd_sweep(int pid);

void ctrd_start(struct ctrd *c)
{
	char path[256], conf[2048], out[4096], log[4096];
	int st;

	*c = (struct ctrd){};
	dir_of((int)getpid(), c->dir, sizeof(c->dir));
	snprintf(c->sock, sizeof(c->sock), "%s/containerd.sock", c->dir);
	if (mkdir(c->dir, 0700) && errno == EEXIST) {
		ctrd_sweep((int)getpid()); /* an earlier test process with this pid */
		cr_assert_eq(mkdir(c->dir, 0700), 0, "mkdir %s: %s", c->dir, strerror(errno));
	}
	/*
	 * Only what differs from the defaults: every path in the test directory, and no CRI
	 * plugin (it would look for CNI configs and a sandbox image in the host's paths).
	 */
	snprintf(
	    conf, sizeof(conf),
	    "version = 2\n"
	    "root = \"%1$s/root\"\n"
	    "state = \"%1$s/state\"\n"
	    "disabled_plugins = [\"io.containerd.grpc.v1.cri\", "
	    "\"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", "
	    "\"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\", "
	    "\"io.containerd.internal.v1.tracing\"]\n"
	    "[grpc]\n  address = \"%2$s\"\n"
	    "[ttrpc]\n  address = \"%1$s/containerd.ttrpc.sock\"\n"
	    "[plugins]\n"
	    "  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"%1$s/opt\"\n",
	    c->dir, c->sock);
	snprintf(path, sizeof(path), "%s/config.toml", c->dir);
	write_str(path, conf);

	c->pid = fork();
	cr_assert_geq(c->pid, 0, "fork: %s", strerror(errno));
	if (c->pid == 0) {
		char logp[256];
		int fd, null;

		snprintf(logp, sizeof(logp), "%s/containerd.log", c->dir);
		fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		/* containerd must not outlive a test that crashed or timed out. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execl("/usr/bin/containerd", "containerd", "--config", path, (char *)NULL);
		_exit(127);
	}
	own_containerd = c->pid;
	snprintf(out, sizeof(out), "%d\n", (int)c->pid);
	snprintf(path, sizeof(path), "%s/containerd.pid", c->dir);
	write_str(path, out);
	for (int i = 0; !answers(c->sock); i++) {
		snprintf(path, sizeof(path), "tail -n 20 %s/containerd.log", c->dir);
		if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
			c->pid = own_containerd = 0;
			th_run(path, log, sizeof(log));
			cr_assert_fail("containerd exited (status %d) before serving: %s", st, log);
		}
		if (i == 1500) {
			th_run(path, log, sizeof(log));
			cr_assert_fail("containerd did not serve %s in 15 s: %s", c->sock, log);
		}
		th_sleep_ms(10);
	}
	cr_assert_eq(ctrd_ctr(c, out, sizeof(out), "version"), 0, "ctr version: %s", out);

	snprintf(conf, sizeof(conf),
		 "python3 tests/containerd/mkimage.py " BUSYBOX " %s/image.tar " CTRD_IMAGE
		 " %s 2>&1",
		 c->dir, goarch());
	cr_assert_eq(th_run(conf, out, sizeof(out)), 0, "mkimage.py: %s", out);
	cr_assert_eq(ctrd_ctr(c, out, sizeof(out), "image import %s/image.tar", c->dir), 0,
		     "ctr image import: %s", out);
}

pid_t ctrd_run(const struct ctrd *c, const char *id, const char *netns, const char *script)
{
	char out[4096], want[128];
	const char *p;

	cr_assert_null(strchr(script, '\''), "no single quote in a script: %s", script);
	cr_assert_eq(
	    ctrd_ctr(c, out, sizeof(out),
		     "run -d --null-io --runc-root %s/runc %s%s " CTRD_IMAGE " %s /bin/sh -c '%s'",
		     c->dir, netns ? "--with-ns network:" : "", netns ? netns : "", id, script),
	    0, "ctr run %s: %s", id, out);
	cr_assert_eq(ctrd_ctr(c, out, sizeof(out), "task ls"), 0, "ctr task ls: %s", out);
	/* "ID PID STATUS" lines */
	snprintf(want, sizeof(want), "\n%s ", id);
	p = strstr(out, want);
	cr_assert_not_null(p, "task %s not in: %s", id, out);
	return (pid_t)strtol(p + strlen(want), NULL, 10);
}

void ctrd_remove(const struct ctrd *c, const char *id)
{
	char out[4096];

	cr_assert_eq(ctrd_ctr(c, out, sizeof(out), "task delete --force %s", id), 0,
		     "ctr task delete %s: %s", id, out);
	cr_assert_eq(ctrd_ctr(c, out, sizeof(out), "container delete %s", id), 0,
		     "ctr container delete %s: %s", id, out);
}

static void option_value(const char *opts, const char *name, char *buf, size_t len)
{
	const char *p = strstr(opts, name);

	cr_assert_not_null(p, "no %s in: %s", name, opts);
	p += strlen(name);
	snprintf(buf, len, "%.*s", (int)strcspn(p, ", \n"), p);
}

void ctrd_snapshot_dirs(const struct ctrd *c, const char *key, char *upper, char *lower, size_t len)
{
	char out[4096];

	/* prints the mount(8) command that would mount the snapshot, with its options */
	cr_assert_eq(ctrd_ctr(c, out, sizeof(out), "snapshots mounts /mnt %s", key), 0,
		     "ctr snapshots mounts: %s", out);
	option_value(out, "upperdir=", upper, len);
	option_value(out, "lowerdir=", lower, len);
}

void ctrd_snapshot_usage(const struct ctrd *c, const char *key, uint64_t *bytes, uint64_t *inodes)
{
	unsigned long long b, i;
	char out[4096], *line;

	cr_assert_eq(ctrd_ctr(c, out, sizeof(out), "snapshots usage -b %s", key), 0,
		     "ctr snapshots usage: %s", out);
	/* "KEY SIZE INODES", then one line per snapshot */
	line = strchr(out, '\n');
	cr_assert(line && sscanf(line + 1, "%*s %llu %llu", &b, &i) == 2, "usage: %s", out);
	*bytes = b;
	*inodes = i;
}

static void read_sys(const char *fmt, const char *dev, char *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), fmt, dev);
	read_line(path, buf, len);
	cr_assert(buf[0], "nothing in %s", path);
}

void ctrd_net_create(const struct ctrd *c, struct ctrd_net *n)
{
	int pid = (int)getpid();
	/* A /29 of 10.250-255/16 of its own: the net helpers' pairs use 10.200-249. */
	unsigned b = 250 + (pid >> 13) % 6, cc = (pid >> 5) & 255, d = (pid & 31) * 8;
	char cmd[2048], out[4096], fwd[16], path[256], brmac[32], podmac[32];

	*n = (struct ctrd_net){};
	snprintf(n->netns, sizeof(n->netns), "tally-test-ctrd-%d", pid);
	snprintf(n->bridge, sizeof(n->bridge), "tlycd%d", pid);
	snprintf(n->gw, sizeof(n->gw), "10.%u.%u.%u", b, cc, d + 1);

	cr_assert_eq(quiet("ip netns add %s", n->netns), 0, "ip netns add %s", n->netns);
	/* Off before eth0 exists there: no IPv6 address, so no ND, MLD or RS on the pod veth. */
	cr_assert_eq(quiet("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
			   "net.ipv6.conf.default.disable_ipv6=1",
			   n->netns),
		     0);
	/* The plugin takes an existing bridge as it is: made here, without IPv6. */
	cr_assert_eq(quiet("ip link add %s type bridge", n->bridge), 0, "bridge %s", n->bridge);
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", n->bridge);
	write_str(path, "1");

	snprintf(path, sizeof(path), "%s/cni.json", c->dir);
	snprintf(cmd, sizeof(cmd),
		 "{\"cniVersion\": \"1.0.0\", \"name\": \"%s\", \"type\": \"bridge\", "
		 "\"bridge\": \"%s\", \"isGateway\": true, \"ipMasq\": false, "
		 "\"ipam\": {\"type\": \"host-local\", \"dataDir\": \"%s/ipam\", "
		 "\"ranges\": [[{\"subnet\": \"10.%u.%u.%u/29\"}]]}}\n",
		 n->netns, n->bridge, c->dir, b, cc, d);
	write_str(path, cmd);

	read_line("/proc/sys/net/ipv4/ip_forward", fwd, sizeof(fwd));
	snprintf(cmd, sizeof(cmd),
		 "CNI_COMMAND=ADD CNI_CONTAINERID=%1$s CNI_NETNS=/run/netns/%1$s CNI_IFNAME=eth0 "
		 "CNI_PATH=" CNI_PATH " timeout 60 " CNI_PATH "/bridge < %2$s/cni.json 2>&1",
		 n->netns, c->dir);
	cr_assert_eq(th_run(cmd, out, sizeof(out)), 0, "CNI ADD: %s", out);
	/* The plugin turns forwarding on for the whole host; nothing here needs it. */
	if (fwd[0])
		write_str("/proc/sys/net/ipv4/ip_forward", fwd);
	{
		/* The plugin's result (CNI spec): interfaces, and the IPs by interface index. */
		static const char script[] =
		    "import json,sys\n"
		    "r = json.load(sys.stdin)\n"
		    "ifs = r['interfaces']\n"
		    "host = [i['name'] for i in ifs if not i.get('sandbox') and i['name'] != "
		    "'%s']\n"
		    "ip = [x for x in r['ips'] if ifs[x['interface']]['name'] == 'eth0']\n"
		    "assert len(host) == 1 and len(ip) == 1, r\n"
		    "print(host[0], ip[0]['address'].split('/')[0], ip[0]['gateway'])\n";
		char py_script[1024], res[4096];

		snprintf(py_script, sizeof(py_script), script, n->bridge);
		cr_assert_eq(py(py_script, out, strlen(out), res, sizeof(res)), 0, "%s: %s", res,
			     out);
		cr_assert_eq(sscanf(res, "%15s %15s %15s", n->host, n->ip, out), 3, "%s", res);
		cr_assert_str_eq(out, n->gw, "the gateway is the bridge");
	}
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", n->host);
	write_str(path, "1");

	/* Permanent neighbours: no ARP crosses the veth, only the test's traffic. */
	read_sys("/sys/class/net/%s/address", n->bridge, brmac, sizeof(brmac));
	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /sys/class/net/eth0/address", n->netns);
	cr_assert_eq(th_run(cmd, podmac, sizeof(podmac)), 0);
	podmac[strcspn(podmac, "\n")] = '\0';
	cr_assert_eq(quiet("ip -n %s neigh replace %s lladdr %s dev eth0 nud permanent", n->netns,
			   n->gw, brmac),
		     0);
	cr_assert_eq(
	    quiet("ip neigh replace %s lladdr %s dev %s nud permanent", n->ip, podmac, n->bridge),
	    0);
}

/* ---- cleanup --------------------------------------------------------------------------- */

/* Whether pid is a live process whose command line contains needle (it is ours, not reused). */
static bool proc_has(int pid, const char *needle)
{
	char path[64], buf[4096];
	ssize_t len;
	int fd;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	for (ssize_t i = 0; i < len; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[len] = '\0';
	return strstr(buf, needle) != NULL;
}

static bool gone(int pid)
{
	if (pid == own_containerd)
		return waitpid(pid, NULL, WNOHANG) == pid;
	return kill(pid, 0) && errno == ESRCH;
}

static void stop_pid(int pid, unsigned ms)
{
	kill(pid, SIGTERM);
	for (unsigned i = 0; i < ms / 10 && !gone(pid); i++)
		th_sleep_ms(10);
	if (!gone(pid)) {
		kill(pid, SIGKILL);
		for (unsigned i = 0; i < 500 && !gone(pid); i++)
			th_sleep_ms(10);
	}
}

/*
 * Kill every process of a cgroup v2 directory (cgroup.kill, 5.14) and wait (bounded) until it
 * is empty, so that it and its v1 twins can be removed.
 */
static void cgroup_kill(const char *cg)
{
	char path[8192], line[64];
	int fd;

	snprintf(path, sizeof(path), "%.4000s/cgroup.kill", cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) != 1)
		fprintf(stderr, "failed to write '%s': %s\n", path, strerror(errno));
	close(fd);
	snprintf(path, sizeof(path), "%.4000s/cgroup.events", cg);
	for (int i = 0; i < 500; i++) {
		FILE *f = fopen(path, "re");
		bool populated = false;

		while (f && fgets(line, sizeof(line), f))
			populated |= !strcmp(line, "populated 1\n");
		if (f)
			fclose(f);
		if (!populated)
			return;
		th_sleep_ms(10);
	}
}

/*
 * The shims of a containerd that is gone: containerd 1.6 keeps no pid file for them, but
 * each was started with this containerd's own socket (in the test directory) on its command
 * line, which nothing else has.
 */
static void kill_shims(const char *arg)
{
	struct dirent *de;
	DIR *d = opendir("/proc");

	while (d && (de = readdir(d))) {
		int pid = atoi(de->d_name);

		if (pid > 0 && proc_has(pid, "containerd-shim") && proc_has(pid, arg))
			stop_pid(pid, 2000);
	}
	if (d)
		closedir(d);
}

/* Every cgroup hierarchy (v1 controllers and the v2 mount), from mountinfo. */
static int cgroup_mounts(char mnts[][256], int max)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int n = 0;

	while (f && n < max && fgets(line, sizeof(line), f)) {
		char mp[256], *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*s %*s %*s %*s %255s", mp) != 1)
			continue;
		if (!strncmp(dash, " - cgroup ", 10) || !strncmp(dash, " - cgroup2 ", 11))
			snprintf(mnts[n++], 256, "%s", mp);
	}
	if (f)
		fclose(f);
	return n;
}

/* Our containers' ids: "...-<pid>" entries of /<CTRD_NS> in the cgroup2 tree. */
static int our_ids(const char *cg2, int pid, char ids[][64], int max)
{
	char dir[512], suffix[24];
	struct dirent *de;
	size_t sl;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/" CTRD_NS, cg2);
	snprintf(suffix, sizeof(suffix), "-%d", pid);
	sl = strlen(suffix);
	d = opendir(dir);
	while (d && n < max && (de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (de->d_type == DT_DIR && l > sl && l < 64 &&
		    !strcmp(de->d_name + l - sl, suffix) && !strncmp(de->d_name, "tally-test-", 11))
			memcpy(ids[n++], de->d_name, l + 1); /* l < 64 */
	}
	if (d)
		closedir(d);
	return n;
}

static void unmount_under(const char *dir)
{
	char line[4096], mps[64][512];
	size_t dl = strlen(dir);
	int n = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	while (f && n < 64 && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %511s", mps[n]) == 1 &&
		    !strncmp(mps[n], dir, dl) && mps[n][dl] == '/')
			n++;
	if (f)
		fclose(f);
	while (n--)
		umount2(mps[n], MNT_DETACH);
}

/*
 * Everything a test process of pid made, in the order that lets each step succeed: tasks and
 * containers through containerd while it runs, containerd itself, then by hand what is left
 * (container processes by their cgroup, shims by their command line, mounts), the cgroups, the
 * network, the directory.
 */
static void ctrd_sweep(int pid)
{
	char dir[96], path[8192], buf[256], mnts[16][256], ids[16][64], cg2[256];
	int cpid, nm, ni;
	struct dirent *de;
	DIR *d;

	dir_of(pid, dir, sizeof(dir));
	if (cgroup2__find_mount_file("/proc/self/mountinfo", cg2, sizeof(cg2)))
		cg2[0] = '\0';
	snprintf(path, sizeof(path), "%s/containerd.pid", dir);
	read_line(path, buf, sizeof(buf));
	cpid = atoi(buf);
	snprintf(path, sizeof(path), "%s/config.toml", dir);
	if (proc_has(cpid, path)) {
		snprintf(path, sizeof(path), "%s/" TASKS_DIR, dir);
		d = opendir(path);
		while (d && (de = readdir(d)))
			if (de->d_name[0] != '.') {
				quiet("timeout 20 ctr --address %s/containerd.sock "
				      "--namespace " CTRD_NS " task delete --force %s",
				      dir, de->d_name);
				quiet("timeout 20 ctr --address %s/containerd.sock "
				      "--namespace " CTRD_NS " container delete %s",
				      dir, de->d_name);
			}
		if (d)
			closedir(d);
		stop_pid(cpid, 5000);
	}
	if (cpid == own_containerd)
		own_containerd = 0;

	/* What containerd could not remove: kill the processes, then their shims. */
	ni = cg2[0] ? our_ids(cg2, pid, ids, 16) : 0;
	for (int i = 0; i < ni; i++) {
		snprintf(path, sizeof(path), "%s/" CTRD_NS "/%s", cg2, ids[i]);
		cgroup_kill(path);
	}
	snprintf(path, sizeof(path), "-address %s/containerd.sock", dir);
	kill_shims(path);
	unmount_under(dir);

	/* runc made /<ns>/<id> in every hierarchy; /<ns> goes too once empty. */
	nm = cgroup_mounts(mnts, 16);
	for (int m = 0; m < nm; m++) {
		for (int i = 0; i < ni; i++) {
			snprintf(path, sizeof(path), "%s/" CTRD_NS "/%s", mnts[m], ids[i]);
			rmdir(path);
		}
		snprintf(path, sizeof(path), "%s/" CTRD_NS, mnts[m]);
		rmdir(path);
	}

	snprintf(path, sizeof(path), "%s/cni.json", dir);
	if (!access(path, R_OK))
		quiet("CNI_COMMAND=DEL CNI_CONTAINERID=tally-test-ctrd-%1$d "
		      "CNI_NETNS=/run/netns/tally-test-ctrd-%1$d CNI_IFNAME=eth0 CNI_PATH=" CNI_PATH
		      " timeout 20 " CNI_PATH "/bridge < %2$s",
		      pid, path);
	quiet("ip netns del tally-test-ctrd-%d", pid);
	quiet("ip link del tlycd%d", pid);
	quiet("rm -rf --one-file-system %s", dir);
	/* made by shims (sockets) whatever the config; each removes its socket, not the dirs */
	rmdir("/run/containerd/s");
	rmdir("/run/containerd");
}

void ctrd_cleanup(void)
{
	ctrd_sweep((int)getpid());
}

/* A test that crashed never ran its .fini: remove what tests whose pid is gone left. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	struct dirent *de;
	DIR *d = opendir("/tmp");

	while (d && (de = readdir(d))) {
		int pid;

		if (sscanf(de->d_name, "tally-test-ctrd-%d", &pid) == 1 && pid > 0 &&
		    kill(pid, 0) && errno == ESRCH)
			ctrd_sweep(pid);
	}
	if (d)
		closedir(d);
}
