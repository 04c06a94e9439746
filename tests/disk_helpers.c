// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "disk_helpers.h"
#include "helpers.h"

#define MAX_TRACKED 256
#define TMP_PREFIX  "tally-test-"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *tmpdirs[MAX_TRACKED];
static int n_tmpdirs;
static char *mounts[MAX_TRACKED];
static int n_mounts;
static struct disk *disks[MAX_TRACKED];
static int n_disks;
static struct {
	struct disk *d;
	struct disk_tree *t;
} trees[MAX_TRACKED];
static int n_trees;
static char *kept[MAX_TRACKED];
static int n_kept;
/* 1: this process has its own mount namespace; -1: unshare refused, mounts are global. */
static int private_ns;

static int run_rm_rf(const char *path)
{
	int status = 0;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execl("/bin/rm", "rm", "-rf", "--one-file-system", "--", path, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int dh_rm_rf(const char *path)
{
	return run_rm_rf(path);
}

/*
 * A test killed by a signal or a timeout never ran its .fini: remove the tally-test-* trees
 * whose creator is gone. Its overlay went with its mount namespace, unless unshare was
 * refused, hence the detach first.
 */
static void sweep_stale(void)
{
	struct dirent *de;
	DIR *dir = opendir("/tmp");

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char name[256], path[PATH_MAX], *last, *prev;
		int pid;

		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			continue;
		snprintf(name, sizeof(name), "%s", de->d_name);
		last = strrchr(name, '-');
		if (!last)
			continue;
		*last = '\0';
		prev = strrchr(name, '-');
		if (!prev)
			continue;
		pid = atoi(prev + 1);
		if (pid <= 0 || pid == getpid() || !kill(pid, 0) || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/tmp/%s/merged", de->d_name);
		umount2(path, MNT_DETACH);
		snprintf(path, sizeof(path), "/tmp/%s", de->d_name);
		run_rm_rf(path);
	}
	closedir(dir);
}

/*
 * Keep the report hook away from helpers.c's line: criterion names hooks after their line
 * (hook_l<N>_impl), and two at the same line in two files collide at link time.
 */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	sweep_stale();
}

const char *dh_tmpdir(const char *name)
{
	char tmpl[PATH_MAX], *p;

	sweep_stale();
	snprintf(tmpl, sizeof(tmpl), "/tmp/" TMP_PREFIX "%s-%d-XXXXXX", name, (int)getpid());
	cr_assert_not_null(mkdtemp(tmpl), "mkdtemp %s: %s", tmpl, strerror(errno));
	p = strdup(tmpl);
	cr_assert_not_null(p);
	pthread_mutex_lock(&lock);
	cr_assert_lt(n_tmpdirs, MAX_TRACKED);
	tmpdirs[n_tmpdirs++] = p;
	pthread_mutex_unlock(&lock);
	return p;
}

void dh_overlay_prepare(struct dh_overlay *o, const char *name)
{
	snprintf(o->root, sizeof(o->root), "%s", dh_tmpdir(name));
	snprintf(o->lower, sizeof(o->lower), "%s/lower", o->root);
	snprintf(o->upper, sizeof(o->upper), "%s/upper", o->root);
	snprintf(o->work, sizeof(o->work), "%s/work", o->root);
	snprintf(o->merged, sizeof(o->merged), "%s/merged", o->root);
	dh_mkdir(o->lower);
	dh_mkdir(o->upper);
	dh_mkdir(o->work);
	dh_mkdir(o->merged);
}

/* Mounts made in a namespace of our own vanish with the test process, whatever kills it. */
static void enter_private_ns(void)
{
	if (private_ns)
		return;
	if (unshare(CLONE_NEWNS)) {
		cr_log_warn(
		    "unshare(CLONE_NEWNS): %s: overlay mounts are global, unmounted by .fini",
		    strerror(errno));
		private_ns = -1;
		return;
	}
	/* Without this the new namespace's mounts stay peers of the host's, both ways. */
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0,
		     "make / private in the test's mount namespace: %s", strerror(errno));
	private_ns = 1;
}

void dh_overlay_mount(struct dh_overlay *o)
{
	char opts[PATH_MAX * 3 + 64];

	enter_private_ns();
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", o->lower, o->upper,
		 o->work);
	cr_assert_eq(mount("overlay", o->merged, "overlay", 0, opts), 0, "mount overlay %s: %s",
		     o->merged, strerror(errno));
	pthread_mutex_lock(&lock);
	cr_assert_lt(n_mounts, MAX_TRACKED);
	mounts[n_mounts++] = strdup(o->merged);
	pthread_mutex_unlock(&lock);
}

struct disk *dh_disk_new(enum disk_mark_mode mode)
{
	struct disk *d = disk__new(&(struct disk_opts){.mark_mode = mode});

	cr_assert_not_null(d, "disk__new(mark_mode %d): %s", (int)mode, strerror(errno));
	pthread_mutex_lock(&lock);
	cr_assert_lt(n_disks, MAX_TRACKED);
	disks[n_disks++] = d;
	pthread_mutex_unlock(&lock);
	return d;
}

void dh_disk_free(struct disk *d)
{
	pthread_mutex_lock(&lock);
	/* Trees the test left tracked go first: untracking needs their engine. */
	for (int i = n_trees - 1; i >= 0; i--)
		if (trees[i].d == d) {
			disk__untrack(d, trees[i].t);
			memmove(&trees[i], &trees[i + 1], (n_trees - i - 1) * sizeof(trees[0]));
			n_trees--;
		}
	for (int i = 0; i < n_disks; i++)
		if (disks[i] == d) {
			memmove(&disks[i], &disks[i + 1], (n_disks - i - 1) * sizeof(disks[0]));
			n_disks--;
			break;
		}
	pthread_mutex_unlock(&lock);
	disk__free(d);
}

struct disk_tree *dh_try_track(struct disk *d, const char *path)
{
	struct disk_tree *t = disk__track(d, path);
	int err = errno;

	if (t) {
		pthread_mutex_lock(&lock);
		if (n_trees < MAX_TRACKED) {
			trees[n_trees].d = d;
			trees[n_trees].t = t;
			n_trees++;
		}
		pthread_mutex_unlock(&lock);
	}
	errno = err;
	return t;
}

struct disk_tree *dh_track(struct disk *d, const char *path)
{
	struct disk_tree *t = dh_try_track(d, path);

	cr_assert_not_null(t, "disk__track(%s): %s", path, strerror(errno));
	return t;
}

void dh_untrack(struct disk *d, struct disk_tree *t)
{
	pthread_mutex_lock(&lock);
	for (int i = n_trees - 1; i >= 0; i--)
		if (trees[i].d == d && trees[i].t == t) {
			memmove(&trees[i], &trees[i + 1], (n_trees - i - 1) * sizeof(trees[0]));
			n_trees--;
			break;
		}
	pthread_mutex_unlock(&lock);
	disk__untrack(d, t);
}

static uint64_t du(const char *opt, const char *path)
{
	char cmd[PATH_MAX + 128], line[PATH_MAX + 64], *end;
	unsigned long long v;
	FILE *f;
	int status;

	cr_assert_null(strchr(path, '\''), "du of a path with a quote: %s", path);
	snprintf(cmd, sizeof(cmd), "du -s %s -- '%s'", opt, path);
	f = popen(cmd, "r");
	cr_assert_not_null(f, "popen %s: %s", cmd, strerror(errno));
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	status = pclose(f);
	cr_assert_eq(status, 0, "%s: exit status 0x%x", cmd, status);
	errno = 0;
	v = strtoull(line, &end, 10);
	cr_assert(end != line && !errno && (*end == '\t' || *end == ' '), "%s printed '%s'", cmd,
		  line);
	return v;
}

uint64_t dh_du_bytes(const char *path)
{
	return du("--block-size=1", path);
}

uint64_t dh_du_inodes(const char *path)
{
	return du("--inodes", path);
}

void dh_dump_tree(const char *path, int max_lines)
{
	char cmd[PATH_MAX + 128];

	fflush(stderr);
	snprintf(cmd, sizeof(cmd), "find '%s' -printf '%%i %%b %%n %%y %%p\\n' | head -n %d 1>&2",
		 path, max_lines);
	if (system(cmd) == -1)
		fprintf(stderr, "find %s: %s\n", path, strerror(errno));
}

const char *dh_keep(const char *s)
{
	char *p = strdup(s);

	cr_assert_not_null(p);
	pthread_mutex_lock(&lock);
	cr_assert_lt(n_kept, MAX_TRACKED);
	kept[n_kept++] = p;
	pthread_mutex_unlock(&lock);
	return p;
}

const char *dh_path(const char *fmt, ...)
{
	static __thread char bufs[16][PATH_MAX];
	static __thread unsigned next;
	char *buf = bufs[next++ % 16];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	cr_assert_lt(n, PATH_MAX, "path too long (%d bytes)", n);
	return buf;
}

static void write_all(int fd, size_t size, const char *path)
{
	char buf[65536];

	memset(buf, 'x', sizeof(buf));
	while (size) {
		size_t n = size < sizeof(buf) ? size : sizeof(buf);
		ssize_t w = write(fd, buf, n);

		cr_assert_gt(w, 0, "write %zu bytes to %s: %s", n, path, strerror(errno));
		size -= w;
	}
}

void dh_write(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	write_all(fd, size, path);
	cr_assert_eq(close(fd), 0, "close %s: %s", path, strerror(errno));
}

void dh_append(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	write_all(fd, size, path);
	cr_assert_eq(close(fd), 0, "close %s: %s", path, strerror(errno));
}

void dh_truncate(const char *path, off_t size)
{
	cr_assert_eq(truncate(path, size), 0, "truncate %s to %lld: %s", path, (long long)size,
		     strerror(errno));
}

void dh_ftruncate(const char *path, off_t size)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(ftruncate(fd, size), 0, "ftruncate %s to %lld: %s", path, (long long)size,
		     strerror(errno));
	cr_assert_eq(close(fd), 0, "close %s: %s", path, strerror(errno));
}

void dh_mkdir(const char *path)
{
	cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %s", path, strerror(errno));
}

void dh_rmdir(const char *path)
{
	cr_assert_eq(rmdir(path), 0, "rmdir %s: %s", path, strerror(errno));
}

void dh_unlink(const char *path)
{
	cr_assert_eq(unlink(path), 0, "unlink %s: %s", path, strerror(errno));
}

void dh_rename(const char *from, const char *to)
{
	cr_assert_eq(rename(from, to), 0, "rename %s to %s: %s", from, to, strerror(errno));
}

void dh_link(const char *from, const char *to)
{
	cr_assert_eq(link(from, to), 0, "link %s to %s: %s", from, to, strerror(errno));
}

void dh_symlink(const char *target, const char *path)
{
	cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path, strerror(errno));
}

void dh_mkfifo(const char *path)
{
	cr_assert_eq(mkfifo(path, 0644), 0, "mkfifo %s: %s", path, strerror(errno));
}

void dh_chmod(const char *path, mode_t mode)
{
	cr_assert_eq(chmod(path, mode), 0, "chmod %s: %s", path, strerror(errno));
}

uint64_t dh_ino(const char *path)
{
	struct stat st;

	cr_assert_eq(lstat(path, &st), 0, "lstat %s: %s", path, strerror(errno));
	return st.st_ino;
}

void dh_cleanup(void)
{
	pthread_mutex_lock(&lock);
	while (n_trees) {
		n_trees--;
		disk__untrack(trees[n_trees].d, trees[n_trees].t);
	}
	while (n_disks)
		disk__free(disks[--n_disks]);
	while (n_mounts) {
		char *m = mounts[--n_mounts];

		if (umount2(m, MNT_DETACH))
			fprintf(stderr, "failed to unmount '%s': %s, ignoring\n", m,
				strerror(errno));
		free(m);
	}
	while (n_tmpdirs) {
		char *p = tmpdirs[--n_tmpdirs];
		int rc = run_rm_rf(p);

		if (rc)
			fprintf(stderr, "failed to remove '%s': rm exited %d, ignoring\n", p, rc);
		free(p);
	}
	while (n_kept)
		free(kept[--n_kept]);
	pthread_mutex_unlock(&lock);
}

struct rootfs_child {
	const char *root; /* chroot here and write a file first (NULL: stay on the host's root) */
	int ready;	  /* write end of a pipe: one byte once done */
};

static void container_main(void *arg)
{
	struct rootfs_child *c = arg;
	FILE *f;

	if (c->root) {
		if (chroot(c->root) || chdir("/"))
			_exit(1);
		f = fopen("/written-by-container", "w");
		if (!f || fprintf(f, "%0*d", 50000, 7) < 0 || fflush(f) || fsync(fileno(f)))
			_exit(1);
		fclose(f);
	}
	if (write(c->ready, "x", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

void dh_container_start(const char *cg, const char *root)
{
	struct rootfs_child c = {.root = root};
	int p[2];
	char b;

	cr_assert_eq(pipe(p), 0);
	c.ready = p[1];
	th_child_start(cg, container_main, &c);
	close(p[1]);
	cr_assert_eq(read(p[0], &b, 1), 1, "the container process failed to start");
	close(p[0]);
}

/* Drop path from list (of n entries) and free it; false when it is not there. */
static bool forget(char **list, int *n, const char *path)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(list[i], path)) {
			free(list[i]);
			memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof(list[0]));
			(*n)--;
			return true;
		}
	return false;
}

void dh_overlay_remove(struct dh_overlay *o)
{
	int rc;

	cr_assert_eq(umount2(o->merged, 0), 0, "unmount %s: %s", o->merged, strerror(errno));
	pthread_mutex_lock(&lock);
	forget(mounts, &n_mounts, o->merged);
	pthread_mutex_unlock(&lock);
	rc = run_rm_rf(o->root);
	cr_assert_eq(rc, 0, "rm -rf %s: exit %d", o->root, rc);
	pthread_mutex_lock(&lock);
	forget(tmpdirs, &n_tmpdirs, o->root);
	pthread_mutex_unlock(&lock);
}
