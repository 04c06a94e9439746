// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "cpu.h"
#include "discovery.h"
#include "helpers.h"

#define MAX_TRACKED 4096

static char cgroot[PATH_MAX];
static char *cgroups[MAX_TRACKED];
static int n_cgroups;
static pid_t children[MAX_TRACKED];
static int n_children;

const char *th_cgroot(void)
{
	if (!cgroot[0]) {
		int err = cgroup2__find_mount_file("/proc/self/mountinfo", cgroot, sizeof(cgroot));

		cr_assert_eq(err, 0, "no cgroup2 mount: %s", strerror(-err));
	}
	return cgroot;
}

const char *th_cgroup_create(const char *rel)
{
	char path[PATH_MAX * 2], *slash;

	snprintf(path, sizeof(path), "%s/%s", th_cgroot(), rel);
	/* Create each missing level, remembering it so th_cleanup removes it. */
	slash = path + strlen(th_cgroot());
	for (;;) {
		slash = strchr(slash + 1, '/');
		if (slash)
			*slash = '\0';
		if (!mkdir(path, 0755)) {
			cr_assert_lt(n_cgroups, MAX_TRACKED);
			cgroups[n_cgroups++] = strdup(path);
		} else {
			cr_assert_eq(errno, EEXIST, "mkdir %s: %s", path, strerror(errno));
		}
		if (!slash)
			break;
		*slash = '/';
	}
	for (int i = n_cgroups - 1; i >= 0; i--)
		if (!strcmp(cgroups[i], path))
			return cgroups[i];
	cr_assert_fail("cgroup %s existed before the test", path);
	return NULL;
}

const char *th_test_cgroup(const char *name)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "tally-test-%s-%d", name, (int)getpid());
	return th_cgroup_create(rel);
}

uint64_t th_cgroup_id(const char *abs)
{
	struct stat st;

	cr_assert_eq(stat(abs, &st), 0, "stat %s: %s", abs, strerror(errno));
	return st.st_ino;
}

uint64_t th_cpustat_ns(const char *abs)
{
	uint64_t usec = 0;
	int fd = open(abs, O_RDONLY | O_DIRECTORY), err;

	cr_assert_geq(fd, 0, "open %s: %s", abs, strerror(errno));
	err = cpustat__read_usage(fd, &usec);
	close(fd);
	cr_assert_eq(err, 0, "read %s/cpu.stat: %s", abs, strerror(-err));
	return usec * 1000;
}

int th_cgroup_enter(const char *abs, pid_t pid)
{
	char path[PATH_MAX], buf[32];
	int fd, len, err = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", abs);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, len) != len)
		err = -errno;
	close(fd);
	return err;
}

int th_cgroup_remove(const char *abs)
{
	return rmdir(abs) ? -errno : 0;
}

/* Poll /proc/<pid>/stat until the task sleeps (blocked on its start pipe). */
static void wait_sleeping(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 5000; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'S')
			return;
		th_sleep_ms(1);
	}
	cr_assert_fail("child %d never blocked", (int)pid);
}

static pid_t start_child_hooked(const char *abs, int cpu, void (*fn)(void *), void *arg,
				void (*hook)(pid_t, void *), void *ctx)
{
	int go[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(go), 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(go[1]);
		/* Wait until the parent moved us, so no time is spent outside the cgroup. */
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		if (cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		if (fn) {
			fn(arg);
			_exit(0);
		}
		for (volatile unsigned long i = 0;; i++)
			;
	}
	close(go[0]);
	cr_assert_lt(n_children, MAX_TRACKED);
	children[n_children++] = pid;
	if (hook)
		wait_sleeping(pid);
	cr_assert_eq(th_cgroup_enter(abs, pid), 0, "enter %s", abs);
	if (hook)
		hook(pid, ctx);
	cr_assert_eq(write(go[1], "x", 1), 1);
	close(go[1]);
	return pid;
}

static pid_t start_child(const char *abs, int cpu, void (*fn)(void *), void *arg)
{
	return start_child_hooked(abs, cpu, fn, arg, NULL, NULL);
}

pid_t th_child_start_hooked(const char *abs, void (*fn)(void *), void *arg,
			    void (*hook)(pid_t, void *), void *ctx)
{
	return start_child_hooked(abs, -1, fn, arg, hook, ctx);
}

pid_t th_burner_start(const char *abs, int cpu)
{
	return start_child(abs, cpu, NULL, NULL);
}

pid_t th_child_start(const char *abs, void (*fn)(void *), void *arg)
{
	return start_child(abs, -1, fn, arg);
}

pid_t th_child_start_on(const char *abs, int cpu, void (*fn)(void *), void *arg)
{
	return start_child(abs, cpu, fn, arg);
}

static void forget_child(pid_t pid)
{
	for (int i = 0; i < n_children; i++)
		if (children[i] == pid)
			children[i] = children[--n_children];
}

void th_child_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	forget_child(pid);
}

int th_child_wait(pid_t pid)
{
	int status = 0;

	waitpid(pid, &status, 0);
	forget_child(pid);
	return status;
}

void th_spin_ms(unsigned ms)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

void th_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts))
		;
}

void th_cleanup(void)
{
	while (n_children)
		th_child_stop(children[n_children - 1]);
	/* Deepest first: created parents before children, so remove in reverse. */
	while (n_cgroups) {
		char *p = cgroups[--n_cgroups];

		/* A cgroup still busy with a dying task needs a moment. */
		for (int i = 0; i < 100 && rmdir(p) && errno == EBUSY; i++)
			th_sleep_ms(10);
		free(p);
	}
}

bool th_close(uint64_t a, uint64_t b, double rel, uint64_t abs_ns)
{
	uint64_t diff = a > b ? a - b : b - a, tol = (uint64_t)(rel * (double)b);

	return diff <= (tol > abs_ns ? tol : abs_ns);
}

/*
 * A test that crashed never ran its .fini: sweep top-level tally-test-* cgroups whose
 * creator is gone. Only their own (test-started) processes are killed.
 */
static void sweep_dir(const char *path)
{
	char sub[PATH_MAX], procs[PATH_MAX + 16];
	struct dirent *de;
	DIR *d;
	FILE *f;
	int pid;

	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			sweep_dir(sub);
		}
	closedir(d);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	f = fopen(procs, "r");
	while (f && fscanf(f, "%d", &pid) == 1)
		kill(pid, SIGKILL);
	if (f)
		fclose(f);
	for (int i = 0; i < 100 && rmdir(path) && errno == EBUSY; i++)
		th_sleep_ms(10);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int pid;

	if (cgroup2__find_mount_file("/proc/self/mountinfo", path, sizeof(path)))
		return;
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		const char *dash = strrchr(de->d_name, '-');
		char sub[PATH_MAX * 2];

		if (strncmp(de->d_name, "tally-test-", 11) || !dash)
			continue;
		pid = atoi(dash + 1);
		if (pid > 0 && !kill(pid, 0))
			continue; /* its test is still running */
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		sweep_dir(sub);
	}
	closedir(d);
}

int th_run(const char *cmd, char *out, size_t len)
{
	size_t n = 0;
	FILE *p = popen(cmd, "r");
	int st;

	cr_assert_not_null(p, "popen %s", cmd);
	while (n + 1 < len && fgets(out + n, (int)(len - n), p))
		n += strlen(out + n);
	out[n] = '\0';
	/* The rest is read and dropped: closing early would kill the command with SIGPIPE. */
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The text goes through a file in /dev/shm: scratch off the filesystems the disk tests mark. */
int th_promtool(const char *text, size_t len, char *out, size_t outlen)
{
	char path[64], cmd[128];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "/dev/shm/tally-test-promtool-%d.txt", (int)getpid());
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(text, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	rc = th_run(cmd, out, outlen);
	unlink(path);
	return rc;
}

void th_expect_promtool_accepts(const char *text, size_t len)
{
	char out[8192];
	int rc = th_promtool(text, len, out, sizeof(out));

	cr_expect_eq(rc, 0, "promtool check metrics exited %d:\n%s", rc, out);
	cr_expect_str_empty(out, "promtool check metrics said:\n%s", out);
}
