// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Tests for the writable-layer lookup: mountinfo parsing on fixture files written like the
 * kernel writes them (containerd, podman with the new mount API, escapes, stacked roots, host
 * roots), cgroup.procs and /proc trees as fixtures, then the real thing: our own root and the
 * root of a process in a cgroup of our own, against findmnt. The read-only layer cache is
 * checked against du. Run from the repository root.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"
#include "helpers.h"
#include "layer.h"

#define FIX "tests/fixtures/mountinfo-layer/"

#define CD	  "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/"
#define PS	  "/var/lib/containers/storage/overlay/"
#define PODMAN_ID "9b2d5e8f1c4a7b0d3e6f9a2c5b8e1d4f7a0c3b6e9d2f5a8c1b4e7d0a3f6c9b2e"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void fini(void)
{
	th_cleanup();
}

TestSuite(layer, .fini = fini, .timeout = 60);

/* ---- helpers --------------------------------------------------------------------------- */

/* A fixture in an exact-size heap buffer with no NUL: ASan catches any read past its end. */
static char *fixture_load(const char *name, size_t *len)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf;
	int fd;

	snprintf(path, sizeof(path), FIX "%s", name);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	cr_assert_not_null(buf);
	cr_assert_eq(read(fd, buf, (size_t)st.st_size), st.st_size, "read %s", path);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static int parse_fixture(const char *name, struct layer_info *li)
{
	size_t len;
	char *buf = fixture_load(name, &len);
	int err;

	memset(li, 0x5a, sizeof(*li)); /* parse must not trust what was there */
	err = layer__parse_mountinfo(buf, len, li);
	free(buf);
	return err;
}

/* Parse a string literal from an exact-size copy (no NUL either). */
static int parse_str(const char *text, struct layer_info *li)
{
	size_t len = strlen(text);
	char *buf = malloc(len ? len : 1);
	int err;

	cr_assert_not_null(buf);
	memcpy(buf, text, len);
	memset(li, 0x5a, sizeof(*li));
	err = layer__parse_mountinfo(buf, len, li);
	free(buf);
	return err;
}

static void check_layers(const struct layer_info *li, const char *fstype, const char *upper,
			 const char *const *lower, size_t nlower)
{
	size_t i;

	cr_expect_str_eq(li->fstype, fstype);
	if (upper) {
		cr_assert_not_null(li->upperdir, "no upperdir, expected '%s'", upper);
		cr_expect_str_eq(li->upperdir, upper);
	} else {
		cr_expect_null(li->upperdir, "upperdir '%s', expected none", li->upperdir);
	}
	cr_assert_eq(li->nlower, nlower, "%zu lowerdirs, expected %zu", li->nlower, nlower);
	for (i = 0; i < nlower; i++)
		cr_expect_str_eq(li->lowerdirs[i], lower[i], "lowerdir %zu", i);
	if (!nlower)
		cr_expect_null(li->lowerdirs);
}

static const char *reason(int err, const struct layer_info *li)
{
	static char buf[128];

	return layer__strerror(err, li, buf, sizeof(buf));
}

/* The fstype findmnt sees at "/" for our mount namespace, or for task's (task > 0). */
static void findmnt_fstype(pid_t task, char *out, size_t len)
{
	char cmd[128], line[256];
	bool any = false;
	FILE *f;

	if (task > 0)
		snprintf(cmd, sizeof(cmd), "findmnt -n -o FSTYPE --task %d / 2>&1", (int)task);
	else
		snprintf(cmd, sizeof(cmd), "findmnt -n -o FSTYPE / 2>&1");
	f = popen(cmd, "r");
	cr_assert_not_null(f, "popen %s: %s", cmd, strerror(errno));
	/* several mounts stacked on "/": the last one is the visible one */
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, "%s", line);
		any = true;
	}
	cr_assert_eq(pclose(f), 0, "%s failed: %s", cmd, any ? out : "");
	cr_assert(any, "%s printed nothing", cmd);
}

/* Whatever the root is, the answer must be the one that goes with findmnt's fstype. */
static void check_against_findmnt(int err, const struct layer_info *li, const char *want)
{
	char trunc[sizeof(li->fstype)];

	snprintf(trunc, sizeof(trunc), "%s", want);
	cr_assert_str_eq(li->fstype, trunc, "fstype '%s', findmnt says '%s'", li->fstype, want);
	if (!strcmp(want, "overlay")) {
		cr_assert(err == 0 || err == -ENODATA, "overlay root: %d (%s)", err,
			  reason(err, li));
		cr_assert_eq(err == 0, li->upperdir != NULL);
	} else {
		cr_assert_eq(err, -EMEDIUMTYPE, "%s root: %d (%s)", want, err, reason(err, li));
		cr_assert_null(li->upperdir);
		cr_assert_eq(li->nlower, 0);
	}
}

/* ---- fixtures: mountinfo --------------------------------------------------------------- */

Test(layer, containerd_overlay_root)
{
	static const char *const lower[] = {CD "1190/fs", CD "1189/fs", CD "1188/fs", CD "1187/fs"};
	struct layer_info li;

	cr_assert_eq(parse_fixture("containerd.txt", &li), 0);
	check_layers(&li, "overlay", CD "1205/fs", lower, N_ELEMS(lower));
	cr_expect_eq(li.pid, 0);
	layer_info__free(&li);
}

Test(layer, podman_lowerdir_plus)
{
	static const char *const lower[] = {
	    PS "l/QX3ZKJ7V4M2N6B5C7D8E9F0G1H",
	    PS "l/W4E5R6T7Y8U9I0O1P2A3S4D5F6",
	    PS "l/Z7X8C9V0B1N2M3L4K5J6H7G8F9",
	};
	struct layer_info li;

	cr_assert_eq(parse_fixture("podman-lowerdir-plus.txt", &li), 0);
	check_layers(&li, "overlay", PS PODMAN_ID "/diff", lower, N_ELEMS(lower));
	layer_info__free(&li);
}

Test(layer, escapes_mount2)
{
	/* \134: is overlay's "\:", \072 an octal colon: both inside a path; \134\054 is "\," */
	static const char *const lower[] = {
	    "/srv/img:1/layer a",
	    "/srv/img:2/layer\tb",
	    "/srv/back\\slash",
	    "/srv/comma,dir",
	};
	struct layer_info li;

	cr_assert_eq(parse_fixture("escaped-legacy.txt", &li), 0);
	check_layers(&li, "overlay", "/srv/my layers,v2/upper\ndir", lower, N_ELEMS(lower));
	layer_info__free(&li);
}

Test(layer, escapes_new_mount_api)
{
	/* lowerdir+= is looked up as it is: a bare colon and \134 (a backslash) are the path's */
	static const char *const lower[] = {
	    "/srv/img:1/layer a",
	    "/srv/back\\slash",
	    "/srv/eq=sign,comma",
	};
	struct layer_info li;

	cr_assert_eq(parse_fixture("escaped-newapi.txt", &li), 0);
	check_layers(&li, "overlay", "/srv/my layers,v2/upper\ndir", lower, N_ELEMS(lower));
	layer_info__free(&li);
}

Test(layer, stacked_roots_last_wins)
{
	static const char *const lower[] = {CD "41/fs"};
	struct layer_info li;

	cr_assert_eq(parse_fixture("stacked.txt", &li), 0);
	check_layers(&li, "overlay", CD "42/fs", lower, N_ELEMS(lower));
	layer_info__free(&li);
}

Test(layer, host_root_is_not_overlay)
{
	struct layer_info li;

	/* overlays mounted elsewhere are other containers' roots, not ours */
	cr_assert_eq(parse_fixture("host-ext4.txt", &li), -EMEDIUMTYPE);
	check_layers(&li, "ext4", NULL, NULL, 0);
	cr_expect_str_eq(reason(-EMEDIUMTYPE, &li), "root filesystem is ext4, not overlay");
	layer_info__free(&li);
}

Test(layer, readonly_overlay_root)
{
	/* a composefs root: datadir+= holds file contents, not a layer of the tree */
	static const char *const lower[] = {"/run/ostree/.private/cfsroot-lower"};
	struct layer_info li;

	cr_assert_eq(parse_fixture("readonly-overlay.txt", &li), -ENODATA);
	check_layers(&li, "overlay", NULL, lower, N_ELEMS(lower));
	cr_expect_str_eq(reason(-ENODATA, &li), "root overlay has no upperdir (read-only)");
	layer_info__free(&li);
}

Test(layer, garbage_is_invalid)
{
	struct layer_info li;

	cr_assert_eq(parse_fixture("garbage.txt", &li), -EINVAL);
	check_layers(&li, "", NULL, NULL, 0);
	layer_info__free(&li);
}

Test(layer, empty_has_no_root)
{
	struct layer_info li;

	cr_assert_eq(parse_fixture("empty.txt", &li), -ENOENT);
	check_layers(&li, "", NULL, NULL, 0);
	cr_expect_str_eq(reason(-ENOENT, &li), "no mount at / in mountinfo");
	layer_info__free(&li);
	cr_assert_eq(parse_str("\n\n\n", &li), -ENOENT);
	layer_info__free(&li);
	cr_assert_eq(layer__parse_mountinfo(NULL, 0, &li), -ENOENT);
	layer_info__free(&li);
}

Test(layer, buffers)
{
	static const char *const ab[] = {"/a", "/b"};
	struct layer_info li;

	/* mounts, none at "/" */
	cr_assert_eq(parse_str("22 27 0:21 / /proc rw - proc proc rw\n"
			       "23 27 0:22 / /sys rw - sysfs sysfs rw\n",
			       &li),
		     -ENOENT);
	layer_info__free(&li);

	/* lines that do not parse are skipped when others do; no trailing newline */
	cr_assert_eq(parse_str("garbage\n"
			       "1 2 0:3 / / rw shared:1 master:2 propagate_from:2 unbindable - "
			       "overlay overlay rw,lowerdir=/a:/b,upperdir=/u,workdir=/w\n"
			       "1 2 0:3 / / rw overlay overlay rw,upperdir=/not-a-line\n"
			       "x 2 0:3 / / rw - overlay overlay rw,upperdir=/bad-id\n"
			       "1 2 03 / / rw - overlay overlay rw,upperdir=/bad-dev\n"
			       "1 2 0:3 / / rw - overlay overlay\n"
			       "4 5 0:6 / relative rw - overlay overlay rw,upperdir=/rel",
			       &li),
		     0);
	check_layers(&li, "overlay", "/u", ab, 2);
	layer_info__free(&li);

	/* an empty source shows as two spaces in a row */
	cr_assert_eq(parse_str("1 2 0:3 / / rw - overlay  rw,lowerdir=/a:/b,upperdir=/u", &li), 0);
	check_layers(&li, "overlay", "/u", ab, 2);
	layer_info__free(&li);

	/* a tmpfs stacked on an overlay root hides it */
	cr_assert_eq(parse_str("1 0 0:3 / / rw - overlay overlay rw,lowerdir=/a,upperdir=/u\n"
			       "2 1 0:4 / / rw - tmpfs tmpfs rw\n",
			       &li),
		     -EMEDIUMTYPE);
	check_layers(&li, "tmpfs", NULL, NULL, 0);
	layer_info__free(&li);

	/* rootless podman: overlay through FUSE is not the kernel's overlay */
	cr_assert_eq(parse_str("1 0 0:3 / / rw,nodev,relatime - fuse.fuse-overlayfs "
			       "fuse-overlayfs rw,user_id=0,group_id=0,default_permissions,"
			       "allow_other\n",
			       &li),
		     -EMEDIUMTYPE);
	check_layers(&li, "fuse.fuse-overlayfs", NULL, NULL, 0);
	cr_expect_str_eq(reason(-EMEDIUMTYPE, &li),
			 "root filesystem is fuse.fuse-overlayfs, not overlay");
	layer_info__free(&li);

	/* a long fstype is cut to fit, never overflowing */
	cr_assert_eq(
	    parse_str("1 0 0:3 / / rw - fuse.a-very-long-filesystem-name-indeed x rw", &li),
	    -EMEDIUMTYPE);
	cr_expect_str_eq(li.fstype, "fuse.a-very-long-filesystem-nam");
	layer_info__free(&li);

	/* data-only layers after "::" are left out, like datadir+= */
	cr_assert_eq(parse_str("1 0 0:3 / / rw - overlay o rw,lowerdir=/a:/b::/d1::/d2,upperdir=/u,"
			       "metacopy=on",
			       &li),
		     0);
	check_layers(&li, "overlay", "/u", ab, 2);
	layer_info__free(&li);

	/* an escaped backslash before a colon: the colon separates */
	cr_assert_eq(
	    parse_str("1 0 0:3 / / rw - overlay o rw,lowerdir=/a\\134\\134:/b,upperdir=/u", &li),
	    0);
	cr_assert_eq(li.nlower, 2);
	cr_expect_str_eq(li.lowerdirs[0], "/a\\");
	cr_expect_str_eq(li.lowerdirs[1], "/b");
	layer_info__free(&li);

	/* escapes the kernel cannot write stay as written; a trailing overlay escape goes */
	cr_assert_eq(
	    parse_str("1 0 0:3 / / rw - overlay o rw,lowerdir+=/a\\9x\\000,upperdir=/u\\134", &li),
	    0);
	cr_assert_eq(li.nlower, 1);
	cr_expect_str_eq(li.lowerdirs[0], "/a\\9x\\000");
	cr_expect_str_eq(li.upperdir, "/u");
	layer_info__free(&li);

	/* an empty lowerdir= and a later upperdir= replacing an earlier one */
	cr_assert_eq(
	    parse_str("1 0 0:3 / / rw - overlay o rw,lowerdir=,upperdir=/u1,upperdir=/u2", &li), 0);
	check_layers(&li, "overlay", "/u2", NULL, 0);
	layer_info__free(&li);

	/* overlay without options at all: read-only, no layers known */
	cr_assert_eq(parse_str("1 0 0:3 / / ro - overlay o ro", &li), -ENODATA);
	check_layers(&li, "overlay", NULL, NULL, 0);
	layer_info__free(&li);

	cr_assert_eq(layer__parse_mountinfo("x", 1, NULL), -EINVAL);
}

Test(layer, info_free_accepts_zeroed)
{
	struct layer_info li = {0};

	layer_info__free(&li);
	layer_info__free(&li);
	layer_info__free(NULL);
	cr_assert_eq(parse_fixture("containerd.txt", &li), 0);
	layer_info__free(&li);
	cr_assert_null(li.upperdir);
	cr_assert_null(li.lowerdirs);
	cr_assert_eq(li.nlower, 0);
	layer_info__free(&li);
}

/* ---- fixtures: /proc and cgroup.procs -------------------------------------------------- */

Test(layer, read_pid_fixture)
{
	static const char *const lower[] = {CD "1190/fs", CD "1189/fs", CD "1188/fs", CD "1187/fs"};
	struct layer_info li;

	cr_assert_eq(layer__read_pid(FIX "proc", 4242, &li), 0);
	check_layers(&li, "overlay", CD "1205/fs", lower, N_ELEMS(lower));
	cr_expect_eq(li.pid, 4242);
	layer_info__free(&li);

	cr_assert_eq(layer__read_pid(FIX "proc", 4241, &li), -ESRCH);
	cr_expect_eq(li.pid, 4241);
	cr_expect_str_eq(reason(-ESRCH, &li), "process 4241 has exited");
	layer_info__free(&li);

	cr_assert_eq(layer__read_pid(FIX "proc", 0, &li), -EINVAL);
	layer_info__free(&li);
}

Test(layer, find_for_cgroup_fixtures)
{
	static const char *const lower[] = {CD "1190/fs", CD "1189/fs", CD "1188/fs", CD "1187/fs"};
	struct layer_info li;

	/* 4241 exited between the read of cgroup.procs and that of its mountinfo */
	cr_assert_eq(layer__find_for_cgroup(FIX "proc", FIX "cgroup/one-gone", &li), 0);
	check_layers(&li, "overlay", CD "1205/fs", lower, N_ELEMS(lower));
	cr_expect_eq(li.pid, 4242);
	layer_info__free(&li);

	/* the first readable process answers, even when the answer is "not overlay" */
	cr_assert_eq(layer__find_for_cgroup(FIX "proc", FIX "cgroup/host", &li), -EMEDIUMTYPE);
	check_layers(&li, "ext4", NULL, NULL, 0);
	cr_expect_eq(li.pid, 4243);
	layer_info__free(&li);

	/* lines that are not pids are skipped; the last line has no newline */
	cr_assert_eq(layer__find_for_cgroup(FIX "proc", FIX "cgroup/junk", &li), 0);
	cr_expect_eq(li.pid, 4242);
	layer_info__free(&li);

	cr_assert_eq(layer__find_for_cgroup(FIX "proc", FIX "cgroup/empty", &li), -ESRCH);
	cr_expect_eq(li.pid, 0);
	cr_expect_str_eq(reason(-ESRCH, &li), "no process in the cgroup");
	layer_info__free(&li);

	cr_assert_eq(layer__find_for_cgroup(FIX "proc", FIX "cgroup/all-gone", &li), -ESRCH);
	cr_expect_eq(li.pid, 0);
	layer_info__free(&li);

	/* a cgroup removed before we looked has no process either */
	cr_assert_eq(layer__find_for_cgroup(FIX "proc", FIX "cgroup/removed", &li), -ESRCH);
	layer_info__free(&li);
}

Test(layer, strerror)
{
	struct layer_info li = {0};
	char buf[64];

	cr_expect_str_eq(layer__strerror(-ENOENT, NULL, NULL, 0), "no mount at / in mountinfo");
	cr_expect_str_eq(layer__strerror(-EMEDIUMTYPE, NULL, NULL, 0),
			 "root filesystem is not overlay");
	cr_expect_str_eq(layer__strerror(-ENODATA, &li, buf, sizeof(buf)),
			 "root overlay has no upperdir (read-only)");
	cr_expect_str_eq(layer__strerror(-ESRCH, &li, buf, sizeof(buf)),
			 "no process in the cgroup");
	cr_expect_str_eq(layer__strerror(-EACCES, &li, buf, sizeof(buf)), strerror(EACCES));
	cr_expect_not_null(layer__strerror(-EACCES, NULL, NULL, 0));
	snprintf(li.fstype, sizeof(li.fstype), "btrfs");
	cr_expect_str_eq(layer__strerror(-EMEDIUMTYPE, &li, buf, sizeof(buf)),
			 "root filesystem is btrfs, not overlay");
	/* a short buffer truncates, never overflows */
	cr_expect_str_eq(layer__strerror(-EMEDIUMTYPE, &li, buf, 8), "root fi");
}

/* ---- the real kernel ------------------------------------------------------------------- */

Test(layer, own_root_agrees_with_findmnt)
{
	struct layer_info li;
	char want[256];
	int err;

	findmnt_fstype(0, want, sizeof(want));
	err = layer__read_pid("/proc", getpid(), &li);
	cr_expect_eq(li.pid, getpid());
	check_against_findmnt(err, &li, want);
	layer_info__free(&li);
}

Test(layer, cgroup_without_process)
{
	const char *cg = th_test_cgroup("layer-empty");
	struct layer_info li;

	cr_assert_eq(layer__find_for_cgroup("/proc", cg, &li), -ESRCH);
	cr_expect_eq(li.pid, 0);
	cr_expect_str_eq(reason(-ESRCH, &li), "no process in the cgroup");
	layer_info__free(&li);
}

Test(layer, cgroup_with_process)
{
	const char *cg = th_test_cgroup("layer-proc");
	struct layer_info li;
	char want[256];
	pid_t pid;
	int err;

	pid = th_burner_start(cg, -1);
	findmnt_fstype(pid, want, sizeof(want));
	err = layer__find_for_cgroup("/proc", cg, &li);
	cr_assert_eq(li.pid, pid, "answered by %d, the cgroup holds %d", (int)li.pid, (int)pid);
	check_against_findmnt(err, &li, want);
	layer_info__free(&li);
}

static void *sleep_forever(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

/* the main thread leaves, another stays: the leader is a zombie that cgroup.procs still lists */
static void leave_main_thread(void *arg)
{
	pthread_t t;

	if (pthread_create(&t, NULL, sleep_forever, NULL))
		_exit(1);
	pthread_exit(NULL);
}

static char task_state(pid_t pid)
{
	char path[64], buf[512], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

Test(layer, cgroup_with_zombie_leader)
{
	const char *cg = th_test_cgroup("layer-zombie");
	struct layer_info li;
	char want[256];
	pid_t pid;
	int i, err;

	pid = th_child_start(cg, leave_main_thread, NULL);
	for (i = 0; i < 5000 && task_state(pid) != 'Z'; i++)
		th_sleep_ms(1);
	cr_assert_eq(task_state(pid), 'Z', "leader of %d never became a zombie", (int)pid);

	/* the threads share one mount namespace: ours, as the child is a fork of this process */
	findmnt_fstype(0, want, sizeof(want));
	err = layer__find_for_cgroup("/proc", cg, &li);
	cr_assert_eq(li.pid, pid, "answered by %d (%s)", (int)li.pid, reason(err, &li));
	check_against_findmnt(err, &li, want);
	layer_info__free(&li);
}

/* ---- read-only layer cache ------------------------------------------------------------- */

static char tmp_root[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void tmp_remove(void)
{
	if (tmp_root[0])
		nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmp_root[0] = '\0';
}

static void tmp_write(const char *rel, size_t size)
{
	char p[PATH_MAX], chunk[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", tmp_root, rel);
	f = fopen(p, "w");
	cr_assert_not_null(f, "create %s: %s", p, strerror(errno));
	memset(chunk, 'x', sizeof(chunk));
	while (size) {
		size_t n = size < sizeof(chunk) ? size : sizeof(chunk);

		cr_assert_eq(fwrite(chunk, 1, n, f), n);
		size -= n;
	}
	cr_assert_eq(fclose(f), 0);
}

static void tmp_mkdir(const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", tmp_root, rel);
	cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s: %s", p, strerror(errno));
}

/* An image layer: a small tree of directories and files under tmp_root/layer. */
static void setup_layer(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/test_layer_cache.%d", (int)getpid());
	nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* a leftover from a crashed run */
	cr_assert_eq(mkdir(tmp_root, 0755), 0, "mkdir %s: %s", tmp_root, strerror(errno));
	tmp_mkdir("layer");
	tmp_mkdir("layer/usr");
	tmp_mkdir("layer/usr/bin");
	tmp_mkdir("layer/etc");
	tmp_write("layer/usr/bin/tool", 100000);
	tmp_write("layer/etc/config", 10);
	tmp_write("layer/etc/empty", 0);
}

static void teardown_layer(void)
{
	tmp_remove();
	th_cleanup();
}

static uint64_t du_number(const char *opts, const char *path)
{
	char cmd[PATH_MAX + 64];
	unsigned long long v = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "du -s %s '%s'", opts, path);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%llu", &v), 1, "%s printed no number", cmd);
	cr_assert_eq(pclose(f), 0, "%s failed", cmd);
	return v;
}

static void layer_path(const char *rel, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", tmp_root, rel);
}

Test(layer, cache_walks_once, .init = setup_layer, .fini = teardown_layer)
{
	struct layer_cache *c = layer_cache__new();
	struct disk_usage a, b;
	char path[PATH_MAX];

	cr_assert_not_null(c);
	layer_path("layer", path, sizeof(path));
	cr_assert_eq(layer_cache__walks(c), 0);
	cr_assert_eq(layer_cache__usage(c, path, &a), 0);
	cr_assert_eq(layer_cache__walks(c), 1);
	/* du is the independent truth */
	cr_expect_eq(a.used_bytes, du_number("--block-size=1", path));
	cr_expect_eq(a.inodes_used, du_number("--inodes", path));
	cr_assert_eq(layer_cache__usage(c, path, &b), 0);
	cr_assert_eq(layer_cache__walks(c), 1);
	cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);
	layer_cache__free(c);
	layer_cache__free(NULL);
}

Test(layer, cache_never_tracks, .init = setup_layer, .fini = teardown_layer)
{
	struct layer_cache *c = layer_cache__new(), *fresh = layer_cache__new();
	struct disk_usage a, b, n;
	char path[PATH_MAX];

	cr_assert_not_null(c);
	cr_assert_not_null(fresh);
	layer_path("layer", path, sizeof(path));
	cr_assert_eq(layer_cache__usage(c, path, &a), 0);
	/* image layers never change: a change made anyway is not seen */
	tmp_write("layer/etc/late", 50000);
	cr_assert_eq(layer_cache__usage(c, path, &b), 0);
	cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);
	cr_expect_eq(layer_cache__walks(c), 1);
	/* while a new walk does see it */
	cr_assert_eq(layer_cache__usage(fresh, path, &n), 0);
	cr_expect_gt(n.used_bytes, a.used_bytes);
	cr_expect_eq(n.inodes_used, a.inodes_used + 1);
	layer_cache__free(c);
	layer_cache__free(fresh);
}

Test(layer, cache_aliases_share_a_walk, .init = setup_layer, .fini = teardown_layer)
{
	struct layer_cache *c = layer_cache__new();
	char path[PATH_MAX], link[PATH_MAX], odd[PATH_MAX];
	struct disk_usage a, b, d;

	cr_assert_not_null(c);
	layer_path("layer", path, sizeof(path));
	/* docker names its lowerdirs through l/<short id> symlinks to the layer */
	layer_path("l", link, sizeof(link));
	cr_assert_eq(symlink("layer", link), 0);
	layer_path("./layer/usr/..//", odd, sizeof(odd));

	cr_assert_eq(layer_cache__usage(c, link, &a), 0);
	cr_assert_eq(layer_cache__usage(c, path, &b), 0);
	cr_assert_eq(layer_cache__usage(c, odd, &d), 0);
	cr_expect_eq(layer_cache__walks(c), 1);
	cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);
	cr_expect_eq(memcmp(&a, &d, sizeof(a)), 0);
	cr_expect_eq(a.used_bytes, du_number("--block-size=1", path));
	layer_cache__free(c);
}

Test(layer, cache_missing_path, .init = setup_layer, .fini = teardown_layer)
{
	struct layer_cache *c = layer_cache__new();
	char path[PATH_MAX];
	struct disk_usage u;

	cr_assert_not_null(c);
	layer_path("no-such-layer", path, sizeof(path));
	cr_assert_eq(layer_cache__usage(c, path, &u), -ENOENT);
	cr_assert_eq(layer_cache__usage(c, path, &u), -ENOENT);
	cr_expect_eq(layer_cache__walks(c), 0);
	/* a layer that appears later is walked then */
	tmp_mkdir("no-such-layer");
	cr_assert_eq(layer_cache__usage(c, path, &u), 0);
	cr_expect_eq(layer_cache__walks(c), 1);
	cr_expect_eq(u.inodes_used, 1);
	cr_assert_eq(layer_cache__usage(NULL, path, &u), -EINVAL);
	cr_assert_eq(layer_cache__usage(c, NULL, &u), -EINVAL);
	layer_cache__free(c);
}

#define CACHE_THREADS 8

struct cache_caller {
	struct layer_cache *c;
	const char *path;
	pthread_barrier_t *start;
	struct disk_usage u;
	int err;
};

static void *cache_call(void *arg)
{
	struct cache_caller *cc = arg;

	pthread_barrier_wait(cc->start);
	cc->err = layer_cache__usage(cc->c, cc->path, &cc->u);
	return NULL;
}

Test(layer, cache_concurrent_callers_walk_once, .init = setup_layer, .fini = teardown_layer)
{
	struct cache_caller cc[CACHE_THREADS];
	pthread_t th[CACHE_THREADS];
	pthread_barrier_t start;
	struct layer_cache *c = layer_cache__new();
	char path[PATH_MAX];
	int i;

	cr_assert_not_null(c);
	/* enough entries that the walk lasts while the other callers arrive */
	tmp_mkdir("layer/many");
	for (i = 0; i < 2000; i++) {
		snprintf(path, sizeof(path), "layer/many/f%d", i);
		tmp_write(path, (size_t)i);
	}
	layer_path("layer", path, sizeof(path));
	cr_assert_eq(pthread_barrier_init(&start, NULL, CACHE_THREADS), 0);
	for (i = 0; i < CACHE_THREADS; i++) {
		cc[i] = (struct cache_caller){.c = c, .path = path, .start = &start};
		cr_assert_eq(pthread_create(&th[i], NULL, cache_call, &cc[i]), 0);
	}
	for (i = 0; i < CACHE_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < CACHE_THREADS; i++) {
		cr_expect_eq(cc[i].err, 0, "caller %d: %d", i, cc[i].err);
		cr_expect_eq(memcmp(&cc[i].u, &cc[0].u, sizeof(cc[0].u)), 0, "caller %d", i);
	}
	cr_expect_eq(layer_cache__walks(c), 1);
	cr_expect_eq(cc[0].u.inodes_used, du_number("--inodes", path));
	layer_cache__free(c);
}
