// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What the benchmarks share: measuring helpers, and for the benchmarks that build a machine's
 * worth of cgroups, namespaces, veths and processes (net, agent), the guard that removes them
 * on every exit path. One benchmark holds the guard at a time (main.c runs them in turn).
 *
 * The guard: SIGINT/SIGTERM/SIGHUP are blocked in every thread and taken by a thread of its
 * own, so the cleanup runs in a plain thread and never races a half-made namespace: creation
 * and cleanup hold one recursive lock (recursive: a failure while creating exits, and the
 * atexit cleanup then takes the lock again). The cleanup is the shared lists (children,
 * cgroups) plus the benchmark's own callback, which removes the rest in its order.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bench.h"
#include "util.h"

static struct {
	pthread_mutex_t lock;
	bool active;
	const char *name; /* the benchmark's, for the signal thread's message */
	void (*cleanup)(bool owner);
	pthread_t main_thread, sig_thread;
	sigset_t sigs, old_mask;
	/* Tracked children, killed by the cleanup; cgroups, removed newest first. */
	pid_t *kids;
	int n_kids, cap_kids;
	char **cgroups;
	int n_cgroups, cap_cgroups;
} guard = {.lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP};

static volatile sig_atomic_t signalled;
static __thread bool in_signal_thread;

/* --- measuring --- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench__median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

int bench__prog_stats(int fd, uint64_t *run_ns, uint64_t *runs)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*run_ns = info.run_time_ns;
	*runs = info.run_cnt;
	return 0;
}

uint64_t bench__thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* --- small helpers --- */

void bench__die(const char *what, int err)
{
	/*
	 * A failure caused by the signal's cleanup (a child killed under us): let that cleanup
	 * have the lock and end the process.
	 */
	if (signalled) {
		while (!pthread_mutex_unlock(&guard.lock))
			;
		for (;;)
			pause();
	}
	fprintf(stderr, "bench: failed to %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

void bench__lock(void)
{
	pthread_mutex_lock(&guard.lock);
	/*
	 * After a signal's cleanup, the main thread would go on with its children killed under it
	 * and print figures made of them: it stops here while the signal thread ends the process.
	 */
	if (signalled && !in_signal_thread) {
		while (!pthread_mutex_unlock(&guard.lock))
			;
		for (;;)
			pause();
	}
}

void bench__unlock(void)
{
	pthread_mutex_unlock(&guard.lock);
}

void bench__sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

char *bench__asprintf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		bench__die("allocate", ENOMEM);
	return s;
}

char *bench__vpath(const char *dir, const char *fmt, va_list ap)
{
	char rel[PATH_MAX];

	vsnprintf(rel, sizeof(rel), fmt, ap);
	return bench__asprintf("%s/%s", dir, rel);
}

int sbuf__addf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return 0;
		}
		size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
		char *p = realloc(b->p, cap);

		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
}

int bench__write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;
	ssize_t len = (ssize_t)strlen(s);

	if (fd < 0)
		return -errno;
	if (write(fd, s, len) != len)
		err = -errno;
	close(fd);
	return err;
}

ssize_t bench__read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r = 0;

	if (fd < 0)
		return -errno;
	while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	return r < 0 ? -errno : (ssize_t)n;
}

int bench__ipv6_off(const char *dev)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", dev);
	return bench__write_str(path, "1");
}

void bench__rmdir_retry(const char *path)
{
	/* A task that was just reaped can keep its cgroup busy for a moment. */
	for (int i = 0; i < 200 && rmdir(path) && errno == EBUSY; i++)
		bench__sleep_ms(10);
}

/* --- children --- */

/* Close every fd from 3 up but keep1 and keep2 (-1: none). */
static void close_others(int keep1, int keep2)
{
	int k[2] = {keep1 < keep2 ? keep1 : keep2, keep1 < keep2 ? keep2 : keep1};
	unsigned lo = 3;

	for (int i = 0; i < 2; i++) {
		if (k[i] < (int)lo)
			continue;
		if ((unsigned)k[i] > lo)
			close_range(lo, (unsigned)k[i] - 1, 0);
		lo = (unsigned)k[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

pid_t bench__fork(int out_fd, int err_fd, int keep1, int keep2)
{
	pid_t parent = getpid(), pid;

	bench__lock();
	if (guard.n_kids == guard.cap_kids) {
		int cap = guard.cap_kids ? guard.cap_kids * 2 : 64;
		pid_t *k = realloc(guard.kids, (size_t)cap * sizeof(*k));

		if (!k)
			bench__die("track a child", ENOMEM);
		guard.kids = k;
		guard.cap_kids = cap;
	}
	pid = fork();
	if (pid < 0)
		bench__die("fork", errno);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		sigprocmask(SIG_SETMASK, &guard.old_mask, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		/* An exit() in the child must not run the parent's cleanup. */
		guard.active = false;
		dup2(null, STDIN_FILENO);
		dup2(out_fd >= 0 ? out_fd : null, STDOUT_FILENO);
		dup2(err_fd >= 0 ? err_fd : null, STDERR_FILENO);
		close_others(keep1, keep2);
		return 0;
	}
	guard.kids[guard.n_kids++] = pid;
	bench__unlock();
	return pid;
}

void bench__forget(pid_t pid)
{
	bench__lock();
	for (int i = 0; i < guard.n_kids; i++)
		if (guard.kids[i] == pid) {
			guard.kids[i] = guard.kids[--guard.n_kids];
			break;
		}
	bench__unlock();
}

int bench__wait(pid_t pid)
{
	int status = -1;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	bench__forget(pid);
	return status;
}

void bench__kill_all(void)
{
	bench__lock();
	for (int i = 0; i < guard.n_kids; i++)
		kill(guard.kids[i], SIGKILL);
	for (int i = 0; i < guard.n_kids; i++)
		while (waitpid(guard.kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	guard.n_kids = 0;
	bench__unlock();
}

int bench__run(const char *const argv[], int out_fd)
{
	pid_t pid = bench__fork(out_fd, -1, -1, -1);
	int status;

	if (pid == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	status = bench__wait(pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int bench__ip_batch(const char *text, size_t len, bool force)
{
	const char *argv[] = {"ip", force ? "-force" : "-batch", force ? "-batch" : "-",
			      force ? "-" : NULL, NULL};
	int fds[2], status = -1;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		sigprocmask(SIG_SETMASK, &guard.old_mask, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[0], STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		/* Errors are expected when cleaning up (what was never made); quiet then. */
		if (force)
			dup2(null, STDERR_FILENO);
		close_others(-1, -1);
		execvp("ip", (char *const *)argv);
		_exit(127);
	}
	close(fds[0]);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fds[1], text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fds[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

char bench__wait_ready(int fd, int n, int secs, const char *what, const char *ok)
{
	char buf[512];

	while (n > 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, secs * 1000);
		ssize_t got;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			bench__die(what, r ? errno : ETIMEDOUT);
		got = read(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
		if (got <= 0)
			bench__die(what, got ? errno : EPIPE);
		for (ssize_t i = 0; ok && i < got; i++)
			if (!buf[i] || !strchr(ok, buf[i]))
				return buf[i] ? buf[i] : '?';
		n -= (int)got;
	}
	return 0;
}

/* --- what the guard removes --- */

const char *bench__cg_make(char *abs)
{
	bench__lock();
	if (guard.n_cgroups == guard.cap_cgroups) {
		int cap = guard.cap_cgroups ? guard.cap_cgroups * 2 : 64;
		char **c = realloc(guard.cgroups, (size_t)cap * sizeof(*c));

		if (!c)
			bench__die("track a cgroup", ENOMEM);
		guard.cgroups = c;
		guard.cap_cgroups = cap;
	}
	if (mkdir(abs, 0755))
		bench__die("create a cgroup", errno);
	guard.cgroups[guard.n_cgroups++] = abs;
	bench__unlock();
	return abs;
}

void bench__cgroups_remove(void)
{
	bench__lock();
	while (guard.n_cgroups) {
		char *p = guard.cgroups[--guard.n_cgroups];

		bench__rmdir_retry(p);
		free(p);
	}
	bench__unlock();
}

void bench__links_del(char (*devs)[IF_NAMESIZE], int n)
{
	struct sbuf b = {};

	/* A namespace's devices are unregistered asynchronously: wait, then delete what is left. */
	for (int t = 0; t < 500; t++) {
		bool left = false;

		for (int i = 0; i < n && !left; i++)
			left = if_nametoindex(devs[i]) > 0;
		if (!left)
			break;
		bench__sleep_ms(20);
	}
	for (int i = 0; i < n; i++)
		if (if_nametoindex(devs[i]) > 0)
			sbuf__addf(&b, "link del %s\n", devs[i]);
	if (b.len)
		bench__ip_batch(b.p, b.len, true);
	free(b.p);
}

/* --- the guard --- */

void bench__cleanup(void)
{
	bench__lock();
	if (guard.active) {
		guard.active = false;
		guard.cleanup(pthread_equal(pthread_self(), guard.main_thread));
	}
	bench__unlock();
}

static void *signal_thread(void *arg)
{
	int sig = 0;

	if (sigwait(&guard.sigs, &sig))
		return NULL;
	in_signal_thread = true;
	signalled = 1;
	fprintf(stderr, "%s: signal %d, removing what the benchmark created\n", guard.name, sig);
	bench__cleanup();
	/* exit, not _exit: the other benchmarks' atexit cleanups run too. */
	exit(128 + sig);
}

void bench__guard_start(const char *name, void (*cleanup)(bool owner))
{
	static bool registered;
	int err;

	guard.name = name;
	guard.cleanup = cleanup;
	guard.main_thread = pthread_self();
	sigemptyset(&guard.sigs);
	sigaddset(&guard.sigs, SIGINT);
	sigaddset(&guard.sigs, SIGTERM);
	sigaddset(&guard.sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &guard.sigs, &guard.old_mask);
	err = pthread_create(&guard.sig_thread, NULL, signal_thread, NULL);
	if (err)
		bench__die("start the signal thread", err);
	bench__lock();
	guard.active = true;
	bench__unlock();
	if (!registered)
		atexit(bench__cleanup);
	registered = true;
}

void bench__guard_end(void)
{
	bench__cleanup();
	pthread_cancel(guard.sig_thread);
	pthread_join(guard.sig_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &guard.old_mask, NULL);
}
