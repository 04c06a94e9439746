// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Tests for discovery: mountinfo parsing on fixture files, cgroup path classification, and
 * tree walks over the fixture trees under tests/fixtures/cgroup and over trees built in /tmp.
 * Run from the repository root.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discovery.h"

#define FIX_MI "tests/fixtures/mountinfo/"
#define FIX_CG "tests/fixtures/cgroup/"

/* container ids and pod uids used by the fixture trees */
#define ID_A "c2e5dff6cdc47aba77fa27a97a93aa4e848734098678f53ff7cb7ccee36789b0"
#define ID_B "fce9f7022be63cb80d3a8f09f0357eda50a3b0be8676b0907baf443a970dc2d1"
#define ID_C "76bf80b51309c8b961adaf04bbe6d5c8077d1b1fe3a5410022f03c7555ae2f4a"
#define ID_D "bc88e254c7e99b9ef8f5a61125413b83537c22d1519193edc079b793aba7807c"
#define ID_E "5ed927135076237254e3a8ed6dc9f52c3c4a95aa5e211e64599dfeb1711f8b7e"
#define ID_F "6a4eed616f03282520a3186de9e7a47b5cf9ee8ef802deca47bd2a49af413d05"
#define ID_G "e9cb07d4ba2b89c3d84bde08d9503df56a383781c74d013def9354a9e4194bb5"
#define ID_H "1002c5d219deca263e033fe2585f91cd9524bd7c7c0e7e7bd27f7e97b8e9f95c"
#define ID_I "94746e61a8c82bf7b36227482e9ebfadb1812cf6a761041866a9b19a709511d9"
#define ID_J "d736449bd2bc644ef9325dbe40f9f3427db27da26211ca1066208e93971675d1"
#define ID_K "f84ea3a2e3aad4ebedb2b0c5951331abee0ca5237ab89896876a848c290c55e6"
#define ID_L "5fab5837b40bd977c34626aa5c4c63d16b0dfa386ce1d81cdfbff42fb1430a67"
#define ID_M "5f770d4af2cc9ffaea6644972d53330a070b81f0c5ff8f614ed68454a3b2d7d8"
#define ID_N "74c996651f416acadca45ac4cc9043ca02acdbba9c4cd1180071b53b25375e59"
#define ID_O "d0b74bdd7c5df63a628b6ac9e8343e3f46c5b9acdff62456852ff36f0628a554"
#define ID_P "283bd0c7dead31ec81fe6a2474e6ce462a342224423b646868e609c8a5dca6ea"
#define ID_Q "2d9abb8b9ea81c3de3d699c450f4ce033da1ce02f43179c5403357da50d0d7c0"
#define ID_S "eb7685bf45739ccfd3d929c307170f1299670c54a023d00b3225d8fff57fb433"
#define ID_T "2348a6cbcafea7e55b09d8cd52915fcc63b37798f1cd07eee53806b013c5cb97"

#define UID_1 "80358e6c-a13b-5e77-afdf-9c8cb3fae4f8"
#define UID_2 "457cc0b2-ddf6-5f6a-b018-fd65bcd923d1"
#define UID_3 "5993c810-2ae8-56c3-9907-41ad162a2bd5"
#define UID_4 "5a92b04c-2b85-5660-bf40-a2c1d896856f"
#define UID_5 "848d0727-a3e7-5c63-8b1f-5e555a73de9d"
#define UID_6 "4b03372c-4fb3-58c3-8519-03b203cf79bc"
#define UID_7 "7405e6d0-0f64-5241-909e-832bb9424115"
/* the same uids as systemd writes them in slice names */
#define UID_1_ "80358e6c_a13b_5e77_afdf_9c8cb3fae4f8"
#define UID_2_ "457cc0b2_ddf6_5f6a_b018_fd65bcd923d1"
#define UID_3_ "5993c810_2ae8_56c3_9907_41ad162a2bd5"
/* a static pod: the uid is a hash of the manifest, no dashes */
#define UID_STATIC "6f3c5d1c2e0d3f4b5a6c7d8e9f0a1b2c"

#define KP_BU "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_2_ ".slice"
#define KP_BE "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_3_ ".slice"
#define KP_GU "/kubepods.slice/kubepods-pod" UID_1_ ".slice"

/* ---- helpers --------------------------------------------------------------------------- */

static void check_ident(const char *path, enum cg_kind kind, enum runtime rt, const char *id,
			const char *uid)
{
	struct cg_ident ident;
	char *copy = strdup(path); /* exact-size heap copy: ASan catches any read past the NUL */

	cr_assert_not_null(copy);
	memset(&ident, 0x5a, sizeof(ident));
	cr_assert_eq(cgroup__classify(copy, &ident), 0, "classify(%s)", path);
	free(copy);
	cr_expect_eq(ident.kind, kind, "kind of %s: %d, expected %d", path, ident.kind, kind);
	cr_expect_eq(ident.runtime, rt, "runtime of %s: %d, expected %d", path, ident.runtime, rt);
	cr_expect_str_eq(ident.id, id, "id of %s", path);
	cr_expect_str_eq(ident.pod_uid, uid, "pod uid of %s", path);
}

static void check_other(const char *path)
{
	check_ident(path, CG_OTHER, RUNTIME_NONE, "", "");
}

static void check_container(const char *path, enum runtime rt, const char *id, const char *uid)
{
	check_ident(path, CG_CONTAINER, rt, id, uid);
}

static void check_pod(const char *path, const char *uid)
{
	check_ident(path, CG_POD, RUNTIME_NONE, "", uid);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static char *concat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	cr_assert_not_null(s);
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

static void check_mount_file(const char *file, int want_err, const char *want)
{
	char out[PATH_MAX];
	int err;

	err = cgroup2__find_mount_file(file, out, sizeof(out));
	cr_assert_eq(err, want_err, "%s: got %d, expected %d", file, err, want_err);
	if (!want_err)
		cr_assert_str_eq(out, want, "%s", file);
}

static int count_open_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* invariants every walk result must satisfy, whatever the tree */
static void check_tree_shape(const struct cg_tree *t)
{
	size_t i;

	cr_assert_gt(t->n, 0);
	cr_assert_not_null(t->index);
	cr_assert_str_eq(t->nodes[0].path, "/");
	cr_assert_eq(t->nodes[0].parent, -1);
	cr_assert_eq(t->nodes[0].depth, 0);
	for (i = 0; i < t->n; i++) {
		const struct cg_node *n = &t->nodes[i], *p;
		struct cg_ident ident;
		size_t plen;

		cr_assert_eq(cg_tree__find(t, n->id), (int)i, "find(%s)", n->path);
		cr_assert_eq(cgroup__classify(n->path, &ident), 0);
		cr_assert_eq(memcmp(&ident, &n->ident, sizeof(ident)), 0, "ident of %s", n->path);
		if (i == 0)
			continue;

		cr_assert(n->parent >= 0 && (size_t)n->parent < i, "%s: parent %d after node %zu",
			  n->path, n->parent, i);
		p = &t->nodes[n->parent];
		cr_assert_eq(n->depth, p->depth + 1, "depth of %s", n->path);
		plen = p->parent < 0 ? 0 : strlen(p->path); /* the root is "/" */
		cr_assert_eq(strncmp(n->path, p->path, plen), 0, "%s not below %s", n->path,
			     p->path);
		cr_assert_eq(n->path[plen], '/', "%s not below %s", n->path, p->path);
		cr_assert_null(strchr(n->path + plen + 1, '/'), "%s not a child of %s", n->path,
			       p->path);
		cr_assert_neq(strcmp(n->path + plen + 1, "cgroup.procs"), 0, "file walked");
	}
}

struct expect {
	enum cg_kind kind;
	enum runtime rt;
	const char *id;
	const char *uid;
	const char *path;
};

/* the containers and pods of the walk must be exactly the expected ones, at the right paths */
static void check_found(const struct cg_tree *t, const struct expect *want, size_t nwant)
{
	size_t i, j, found = 0;

	for (i = 0; i < t->n; i++) {
		const struct cg_node *n = &t->nodes[i];
		bool matched = false;

		if (n->ident.kind == CG_OTHER) {
			cr_expect_eq(n->ident.runtime, RUNTIME_NONE, "%s", n->path);
			cr_expect_str_empty(n->ident.id, "%s", n->path);
			cr_expect_str_empty(n->ident.pod_uid, "%s", n->path);
			continue;
		}
		found++;
		for (j = 0; j < nwant; j++) {
			if (n->ident.kind == want[j].kind && n->ident.runtime == want[j].rt &&
			    !strcmp(n->ident.id, want[j].id) &&
			    !strcmp(n->ident.pod_uid, want[j].uid) &&
			    !strcmp(n->path, want[j].path))
				matched = true;
		}
		cr_expect(matched, "unexpected %s at %s (kind %d id '%s' uid '%s')",
			  runtime__name(n->ident.runtime), n->path, n->ident.kind, n->ident.id,
			  n->ident.pod_uid);
	}
	cr_expect_eq(found, nwant, "found %zu containers and pods, expected %zu", found, nwant);
}

static void walk_fixture(const char *dir, size_t nnodes, const struct expect *want, size_t nwant)
{
	struct cg_tree t = {0};
	int fds = count_open_fds();

	cr_assert_eq(cg_tree__walk(&t, dir), 0, "walk %s", dir);
	cr_expect_eq(t.n, nnodes, "%s: %zu nodes, expected %zu", dir, t.n, nnodes);
	check_tree_shape(&t);
	check_found(&t, want, nwant);
	cg_tree__free(&t);
	cr_assert_eq(count_open_fds(), fds, "fd leak");
}

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- temp trees (named after the test and the pid, removed by .fini even on failure) ---- */

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

static void tmp_create(const char *test)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/test_discovery_%s.%d", test, (int)getpid());
	nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* a leftover from a crashed run */
	cr_assert_eq(mkdir(tmp_root, 0755), 0, "mkdir %s: %s", tmp_root, strerror(errno));
}

static void tmp_mkdir(const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", tmp_root, rel);
	cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s: %s", p, strerror(errno));
}

static void tmp_symlink(const char *target, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", tmp_root, rel);
	cr_assert_eq(symlink(target, p), 0, "symlink %s: %s", p, strerror(errno));
}

static void setup_symlinks(void)
{
	tmp_create("symlinks");
}

static struct rlimit saved_nofile;

static void setup_deep(void)
{
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	tmp_create("deep");
}

static void teardown_deep(void)
{
	/* the test lowers the fd limit; nftw needs fds to remove the tree */
	setrlimit(RLIMIT_NOFILE, &saved_nofile);
	tmp_remove();
}

static void setup_bigfile(void)
{
	tmp_create("bigfile");
}

/* ---- mountinfo ------------------------------------------------------------------------- */

Test(discovery, mountinfo_pure_v2)
{
	check_mount_file(FIX_MI "v2.txt", 0, "/sys/fs/cgroup");
}

Test(discovery, mountinfo_hybrid)
{
	check_mount_file(FIX_MI "hybrid.txt", 0, "/sys/fs/cgroup/unified");
}

Test(discovery, mountinfo_v1_only)
{
	check_mount_file(FIX_MI "v1only.txt", -ENOENT, NULL);
}

Test(discovery, mountinfo_space_in_mount_point)
{
	check_mount_file(FIX_MI "space.txt", 0, "/mnt/my cgroup root");
}

Test(discovery, mountinfo_escapes)
{
	check_mount_file(FIX_MI "escapes.txt", 0, "/mnt/tab\tnl\nbs\\end");
}

Test(discovery, mountinfo_prefers_root_slash)
{
	/* the container's own subtree comes first, the host's full tree later */
	check_mount_file(FIX_MI "container.txt", 0, "/host/sys/fs/cgroup");
}

Test(discovery, mountinfo_prefers_the_host_tree_in_a_cgroup_namespace)
{
	/*
	 * A pod with a cgroup namespace of its own: the runtime's mount shows "/" (the pod's
	 * subtree), the host's tree mounted in shows "/../../.." and is the one to count; a
	 * sibling subtree ("/../../../kubepods/other") is not.
	 */
	check_mount_file(FIX_MI "pod-cgroupns.txt", 0, "/host/sys/fs/cgroup");
}

Test(discovery, mountinfo_only_subtree)
{
	check_mount_file(FIX_MI "container-nsroot.txt", 0, "/sys/fs/cgroup");
}

Test(discovery, mountinfo_missing_file)
{
	check_mount_file(FIX_MI "does-not-exist.txt", -ENOENT, NULL);
}

Test(discovery, mountinfo_live)
{
	char out[PATH_MAX];
	int err;

	/* whatever this host has: it must parse, and a found mount point is absolute */
	err = cgroup2__find_mount_file("/proc/self/mountinfo", out, sizeof(out));
	cr_assert(err == 0 || err == -ENOENT, "err %d", err);
	if (!err)
		cr_assert_eq(out[0], '/');
}

Test(discovery, mountinfo_buffers)
{
	char out[64];

	cr_assert_eq(cgroup2__find_mount("", out, sizeof(out)), -ENOENT);
	cr_assert_eq(cgroup2__find_mount("\n\n\n", out, sizeof(out)), -ENOENT);
	/* no optional fields, no trailing newline */
	cr_assert_eq(cgroup2__find_mount("1 2 0:3 / /cg rw - cgroup2 cgroup2 rw", out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/cg");
	/* several optional fields */
	cr_assert_eq(cgroup2__find_mount("1 2 0:3 / /cg2 rw shared:5 master:1 propagate_from:2 - "
					 "cgroup2 cgroup2 rw\n",
					 out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/cg2");
	/* fstype must match exactly, and only after the separator */
	cr_assert_eq(cgroup2__find_mount("1 2 0:3 / /a rw - cgroup2x x rw\n"
					 "1 2 0:3 / /b rw - cgroup cgroup2 cgroup2\n"
					 "1 2 0:3 / /c cgroup2 - tmpfs cgroup2 rw\n",
					 out, sizeof(out)),
		     -ENOENT);
	/* truncated and separator-less lines are skipped */
	cr_assert_eq(cgroup2__find_mount("1 2\n"
					 "1 2 0:3 / /x rw cgroup2 cgroup2 rw\n"
					 "1 2 0:3 / /y rw -\n"
					 "1 2 0:3 / /z rw - cgroup2\n",
					 out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/z");
	/* the first mount with root "/" wins over earlier subtrees and later mounts */
	cr_assert_eq(cgroup2__find_mount("1 2 0:3 /sub /s rw - cgroup2 c rw\n"
					 "1 2 0:3 / /first rw - cgroup2 c rw\n"
					 "1 2 0:3 / /second rw - cgroup2 c rw\n",
					 out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/first");
	/* malformed escapes stay as written */
	cr_assert_eq(
	    cgroup2__find_mount("1 2 0:3 / /a\\9x\\01\\000\\ rw - cgroup2 c rw", out, sizeof(out)),
	    0);
	cr_assert_str_eq(out, "/a\\9x\\01\\000\\");
	cr_assert_eq(cgroup2__find_mount(NULL, out, sizeof(out)), -EINVAL);
}

Test(discovery, mountinfo_too_long)
{
	const char *mi = "1 2 0:3 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
	char out[32];

	cr_assert_eq(cgroup2__find_mount(mi, out, strlen("/sys/fs/cgroup")), -ENAMETOOLONG);
	cr_assert_eq(cgroup2__find_mount(mi, out, 0), -ENAMETOOLONG);
	cr_assert_eq(cgroup2__find_mount(mi, out, strlen("/sys/fs/cgroup") + 1), 0);
	cr_assert_str_eq(out, "/sys/fs/cgroup");
	/* the length counts unescaped bytes: "/a b" is 4 */
	cr_assert_eq(cgroup2__find_mount("1 2 0:3 / /a\\040b rw - cgroup2 c rw", out, 5), 0);
	cr_assert_str_eq(out, "/a b");
	cr_assert_eq(cgroup2__find_mount("1 2 0:3 / /a\\040b rw - cgroup2 c rw", out, 4),
		     -ENAMETOOLONG);
}

Test(discovery, mountinfo_big_file, .init = setup_bigfile, .fini = tmp_remove)
{
	char path[PATH_MAX];
	FILE *f;
	int i;

	/* much more than any single read: the whole file must be read, not one buffer of it */
	snprintf(path, sizeof(path), "%s/mountinfo", tmp_root);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (i = 0; i < 20000; i++)
		fprintf(f, "%d 1 0:%d / /mnt/m%d rw,relatime shared:%d - tmpfs tmpfs rw\n", i + 100,
			i, i, i);
	fprintf(f, "99 1 0:99 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw\n");
	cr_assert_eq(fclose(f), 0);
	check_mount_file(path, 0, "/sys/fs/cgroup");
}

/* ---- classify -------------------------------------------------------------------------- */

Test(discovery, runtime_names)
{
	cr_assert_str_eq(runtime__name(RUNTIME_DOCKER), "docker");
	cr_assert_str_eq(runtime__name(RUNTIME_CONTAINERD), "containerd");
	cr_assert_str_eq(runtime__name(RUNTIME_CRIO), "cri-o");
	cr_assert_str_eq(runtime__name(RUNTIME_PODMAN), "podman");
	cr_assert_str_eq(runtime__name(RUNTIME_KUBEPODS), "kubernetes");
	cr_assert_null(runtime__name(RUNTIME_NONE));
	cr_assert_null(runtime__name((enum runtime)42));
}

Test(discovery, classify_invalid)
{
	struct cg_ident ident;

	memset(&ident, 0x5a, sizeof(ident));
	cr_assert_eq(cgroup__classify("", &ident), -EINVAL);
	cr_assert_eq(ident.kind, CG_OTHER);
	cr_assert_str_empty(ident.id);
	cr_assert_eq(cgroup__classify("docker/" ID_A, &ident), -EINVAL);
	cr_assert_eq(cgroup__classify(NULL, &ident), -EINVAL);
	cr_assert_eq(ident.kind, CG_OTHER);
}

Test(discovery, classify_other)
{
	check_other("/");
	check_other("/init.scope");
	check_other("/system.slice");
	check_other("/system.slice/cron.service");
	check_other("/system.slice/docker.service");
	check_other("/user.slice/user-1000.slice/session-3.scope");
	check_other("/user.slice/user-1000.slice/user@1000.service/app.slice");
	check_other("/machine.slice");
}

Test(discovery, classify_docker_systemd)
{
	check_container("/system.slice/docker-" ID_A ".scope", RUNTIME_DOCKER, ID_A, "");
	/* rootless docker lives in the user's systemd instance */
	check_container("/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" ID_B
			".scope",
			RUNTIME_DOCKER, ID_B, "");
	check_other("/system.slice/docker-" ID_A ".scope/sub");
	check_other("/system.slice/docker-" ID_A);
	check_other("/system.slice/docker-" ID_A ".slice");
	check_other("/system.slice/docker-" ID_A ".scopex");
	check_other("/system.slice/xdocker-" ID_A ".scope");
}

Test(discovery, classify_strict_hex_ids)
{
#define ID_63	 "c2e5dff6cdc47aba77fa27a97a93aa4e848734098678f53ff7cb7ccee36789b"
#define ID_UPPER "C2E5DFF6CDC47ABA77FA27A97A93AA4E848734098678F53FF7CB7CCEE36789B0"
#define ID_NOHEX "g2e5dff6cdc47aba77fa27a97a93aa4e848734098678f53ff7cb7ccee36789b0"
	check_other("/system.slice/docker-" ID_63 ".scope");
	check_other("/system.slice/docker-" ID_A "0.scope");
	check_other("/system.slice/docker-" ID_UPPER ".scope");
	check_other("/system.slice/docker-" ID_NOHEX ".scope");
	check_other("/system.slice/cri-containerd-" ID_63 ".scope");
	check_other("/system.slice/crio-" ID_UPPER ".scope");
	check_other("/machine.slice/libpod-" ID_NOHEX ".scope");
	check_other("/docker/" ID_UPPER);
	check_other("/docker/" ID_63);
	check_other("/docker/" ID_A "0");
	check_other("/libpod_parent/libpod-" ID_63);
	check_other("/mynamespace/" ID_UPPER);
	check_other("/system.slice/docker-.scope");
#undef ID_63
#undef ID_UPPER
#undef ID_NOHEX
}

Test(discovery, classify_containerd_crio_podman_scopes)
{
	check_container("/system.slice/cri-containerd-" ID_E ".scope", RUNTIME_CONTAINERD, ID_E,
			"");
	check_container("/system.slice/crio-" ID_L ".scope", RUNTIME_CRIO, ID_L, "");
	check_other("/system.slice/crio-conmon-" ID_L ".scope");
	check_container("/machine.slice/libpod-" ID_N ".scope", RUNTIME_PODMAN, ID_N, "");
	check_other("/machine.slice/libpod-conmon-" ID_N ".scope");
	check_other("/machine.slice/libpod-" ID_N ".scope/container");
	check_container("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_P
			".scope",
			RUNTIME_PODMAN, ID_P, "");
}

Test(discovery, classify_docker_cgroupfs)
{
	check_container("/docker/" ID_C, RUNTIME_DOCKER, ID_C, "");
	check_other("/docker");
	check_other("/docker/" ID_C "/sub");
	check_other("/docker/not-an-id");
	/* docker in docker */
	check_container("/docker/" ID_C "/docker/" ID_D, RUNTIME_DOCKER, ID_D, "");
}

Test(discovery, classify_podman_cgroupfs)
{
	check_container("/libpod_parent/libpod-" ID_O, RUNTIME_PODMAN, ID_O, "");
	check_other("/libpod_parent");
	check_other("/libpod_parent/conmon");
	check_other("/libpod_parent/" ID_O);
	check_other("/libpod_parent/libpod-conmon-" ID_O);
	check_other("/libpod_parent/libpod-" ID_O "/sub");
	/* libpod-<id> without .scope means nothing outside libpod_parent */
	check_other("/somewhere/else/libpod-" ID_O);
}

Test(discovery, classify_k8s_systemd_pods)
{
	check_other("/kubepods.slice");
	check_other("/kubepods.slice/kubepods-burstable.slice");
	check_other("/kubepods.slice/kubepods-besteffort.slice");
	check_pod(KP_BU, UID_2);
	check_pod(KP_BE, UID_3);
	check_pod(KP_GU, UID_1);
	check_pod("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_STATIC
		  ".slice",
		  UID_STATIC);
	/* kubelet with --cgroup-root, as kind nodes run it */
	check_pod("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
		  "kubelet-kubepods-besteffort-pod" UID_3_ ".slice",
		  UID_3);
}

Test(discovery, classify_k8s_systemd_pods_malformed)
{
	/* a pod slice must sit in its own QoS slice */
	check_other("/kubepods.slice/kubepods-burstable-pod" UID_2_ ".slice");
	check_other("/kubepods-burstable-pod" UID_2_ ".slice");
	check_other("/kubepods.slice/kubepods-besteffort.slice/kubepods-burstable-pod" UID_2_
		    ".slice");
	check_other("/kubepods.slice/kubepods-guaranteed.slice/kubepods-guaranteed-pod" UID_2_
		    ".slice");
	check_other("/kubepods.slice/kubepods-pod.slice");
	check_other("/kubepods.slice/kubepods-podxyz.slice");
	check_other("/kubepods.slice/kubepods-pod" UID_2_ "_0000.slice");
	check_other("/kubepods.slice/notkubepods-pod" UID_2_ ".slice");
	check_other("/kubepods.slice/kubepods-pod" UID_2_ ".scope");
}

Test(discovery, classify_k8s_systemd_containers)
{
	check_container(KP_BU "/cri-containerd-" ID_G ".scope", RUNTIME_CONTAINERD, ID_G, UID_2);
	check_container(KP_BE "/cri-containerd-" ID_H ".scope", RUNTIME_CONTAINERD, ID_H, UID_3);
	check_container(KP_GU "/cri-containerd-" ID_E ".scope", RUNTIME_CONTAINERD, ID_E, UID_1);
	check_container(KP_BU "/crio-" ID_L ".scope", RUNTIME_CRIO, ID_L, UID_2);
	check_container(KP_GU "/docker-" ID_A ".scope", RUNTIME_DOCKER, ID_A, UID_1);
	check_other(KP_BU "/crio-conmon-" ID_L ".scope");
	check_other(KP_BU "/crio-" ID_L);
	check_other(KP_BU "/" ID_L);
	/* nested below a container: not a container, and not reported as part of the pod */
	check_other(KP_BU "/cri-containerd-" ID_G ".scope/foo");
	check_other(KP_BU "/crio-" ID_L ".scope/container");
}

Test(discovery, classify_k8s_cgroupfs)
{
	check_other("/kubepods");
	check_other("/kubepods/burstable");
	check_other("/kubepods/besteffort");
	check_other("/kubepods/" ID_I);
	check_pod("/kubepods/pod" UID_4, UID_4);
	check_pod("/kubepods/burstable/pod" UID_5, UID_5);
	check_pod("/kubepods/besteffort/pod" UID_6, UID_6);
	check_pod("/kubepods/burstable/pod" UID_STATIC, UID_STATIC);
	check_other("/kubepods/guaranteed/pod" UID_4);
	check_other("/burstable/pod" UID_5);
	check_other("/kubepods/burstable/pod");
	check_other("/kubepods/burstable/pod" UID_1_);
	check_other("/kubepods/burstable/pod" UID_5 "-0000");
	check_other("/kubepods/burstable/podXYZ");
}

Test(discovery, classify_k8s_cgroupfs_containers)
{
	check_container("/kubepods/pod" UID_4 "/" ID_I, RUNTIME_KUBEPODS, ID_I, UID_4);
	check_container("/kubepods/burstable/pod" UID_5 "/" ID_J, RUNTIME_KUBEPODS, ID_J, UID_5);
	check_container("/kubepods/besteffort/pod" UID_6 "/" ID_K, RUNTIME_KUBEPODS, ID_K, UID_6);
	/* a plain name is taken as it is */
	check_container("/kubepods/pod" UID_4 "/pause", RUNTIME_KUBEPODS, "pause", UID_4);
	/* the runtime's own name forms, with or without .scope */
	check_container("/kubepods/burstable/pod" UID_5 "/cri-containerd-" ID_J ".scope",
			RUNTIME_CONTAINERD, ID_J, UID_5);
	check_container("/kubepods/burstable/pod" UID_5 "/crio-" ID_L, RUNTIME_CRIO, ID_L, UID_5);
	check_container("/kubepods/burstable/pod" UID_5 "/docker-" ID_A ".scope", RUNTIME_DOCKER,
			ID_A, UID_5);
	check_other("/kubepods/burstable/pod" UID_5 "/crio-conmon-" ID_L);
	check_other("/kubepods/burstable/pod" UID_5 "/crio-conmon-" ID_L ".scope");
	check_other("/kubepods/burstable/pod" UID_5 "/libpod-conmon-" ID_L);
	/* nested cgroups keep no pod uid */
	check_other("/kubepods/pod" UID_4 "/" ID_I "/foo");
	check_other("/kubepods/besteffort/pod" UID_6 "/" ID_K "/nested/deeper");
}

Test(discovery, classify_k8s_cgroupfs_id_length)
{
	char *max = repeat('x', CG_ID_MAX - 1), *over = repeat('x', CG_ID_MAX);
	char *p1 = concat3("/kubepods/pod" UID_4, "/", max);
	char *p2 = concat3("/kubepods/pod" UID_4, "/", over);

	check_container(p1, RUNTIME_KUBEPODS, max, UID_4);
	check_other(p2);
	free(p1);
	free(p2);
	free(max);
	free(over);
}

Test(discovery, classify_ctr_namespaces)
{
	check_container("/default/redis", RUNTIME_CONTAINERD, "redis", "");
	check_container("/default/" ID_Q, RUNTIME_CONTAINERD, ID_Q, "");
	check_container("/k8s.io/" ID_E, RUNTIME_CONTAINERD, ID_E, "");
	check_container("/moby/web-1", RUNTIME_CONTAINERD, "web-1", "");
	check_container("/buildkit/" ID_S, RUNTIME_CONTAINERD, ID_S, "");
	/* any other namespace only with a runtime-generated id */
	check_container("/mynamespace/" ID_T, RUNTIME_CONTAINERD, ID_T, "");
	check_other("/mynamespace/redis");
	check_other("/default");
	check_other("/default/redis/sub");
	check_other("/x/default/redis");
	check_other("/x/y/" ID_T);
	/* what systemd and the other runtimes own */
	check_other("/system.slice/" ID_T);
	check_other("/session-1.scope/" ID_T);
	check_other("/cron.service/" ID_T);
	check_other("/kubepods/" ID_T);
	check_other("/libpod_parent/" ID_T);
}

Test(discovery, classify_ctr_id_length)
{
	char *max = repeat('a', CG_ID_MAX - 1), *over = repeat('a', CG_ID_MAX);
	char *p1 = concat3("/default", "/", max), *p2 = concat3("/default", "/", over);

	check_container(p1, RUNTIME_CONTAINERD, max, "");
	check_other(p2);
	free(p1);
	free(p2);
	free(max);
	free(over);
}

Test(discovery, classify_hostile_bytes)
{
	/* a newline anywhere breaks the strict forms */
	check_other("/system.slice/docker-" ID_A ".scope\n");
	check_other("/system.slice/docker-\n" ID_A ".scope");
	check_other("/docker/" ID_C "\n");
	check_other("/kubepods/pod" UID_4 "\n");
	check_other("/kubepods.slice/kubepods-pod" UID_1_ ".slice\n");
	check_other("/\n");
	check_other("/\xff\xfe\xfd");
	check_other("/system.slice/docker-\xc3\x28" ID_A ".scope");
	check_other("/kubepods/pod\xff");
	/* free-form ids keep their bytes: escaping is the output's job */
	check_container("/default/red\nis", RUNTIME_CONTAINERD, "red\nis", "");
	check_container("/default/\xff\xfe", RUNTIME_CONTAINERD, "\xff\xfe", "");
	check_container("/kubepods/pod" UID_4 "/\xc3\x28", RUNTIME_KUBEPODS, "\xc3\x28", UID_4);
	/* empty components from doubled or trailing slashes */
	check_other("//");
	check_other("///");
	check_other("/default/");
	check_other("/docker//" ID_C);
	check_other("/kubepods/pod" UID_4 "/");
	check_other("/kubepods//pod" UID_4);
	check_other("/-");
	check_other("/.slice");
	check_other("/pod");
	check_other("/a/pod");
	check_other("/kubepods.slice/-pod.slice");
}

Test(discovery, classify_long_paths)
{
	size_t n = 1 << 20, i;
	char *one = repeat('a', n), *p, *deep = malloc(2 * n + 1), *tail;

	/* one huge component */
	one[0] = '/';
	check_other(one);
	free(one);

	/* a million-byte path of many components */
	cr_assert_not_null(deep);
	for (i = 0; i < n; i++) {
		deep[2 * i] = '/';
		deep[2 * i + 1] = 'a';
	}
	deep[2 * n] = '\0';
	check_other(deep);

	/* a container at the end of it is still found */
	tail = concat3(deep, "/system.slice/docker-" ID_A ".scope", "");
	check_container(tail, RUNTIME_DOCKER, ID_A, "");
	free(tail);
	p = concat3(deep, "/kubepods/pod" UID_4 "/", ID_I);
	check_container(p, RUNTIME_KUBEPODS, ID_I, UID_4);
	free(p);
	free(deep);

	/* a huge name where a pod uid or scope is expected */
	one = repeat('f', n);
	p = concat3("/kubepods/pod", one, "");
	check_other(p);
	free(p);
	p = concat3("/system.slice/docker-", one, ".scope");
	check_other(p);
	free(p);
	p = concat3("/kubepods.slice/kubepods-pod", one, ".slice");
	check_other(p);
	free(p);
	free(one);
}

/* ---- walks over the fixture trees ------------------------------------------------------ */

Test(discovery, walk_docker_systemd)
{
	static const struct expect want[] = {
	    {CG_CONTAINER, RUNTIME_DOCKER, ID_A, "", "/system.slice/docker-" ID_A ".scope"},
	    {CG_CONTAINER, RUNTIME_DOCKER, ID_B, "", "/system.slice/docker-" ID_B ".scope"},
	};

	walk_fixture(FIX_CG "docker-systemd", 11, want, N_ELEMS(want));
}

Test(discovery, walk_docker_cgroupfs)
{
	static const struct expect want[] = {
	    {CG_CONTAINER, RUNTIME_DOCKER, ID_C, "", "/docker/" ID_C},
	    {CG_CONTAINER, RUNTIME_DOCKER, ID_D, "", "/docker/" ID_D},
	};

	walk_fixture(FIX_CG "docker-cgroupfs", 8, want, N_ELEMS(want));
}

Test(discovery, walk_containerd_systemd_kubepods)
{
	static const struct expect want[] = {
	    {CG_POD, RUNTIME_NONE, "", UID_1, KP_GU},
	    {CG_POD, RUNTIME_NONE, "", UID_2, KP_BU},
	    {CG_POD, RUNTIME_NONE, "", UID_3, KP_BE},
	    {CG_CONTAINER, RUNTIME_CONTAINERD, ID_E, UID_1, KP_GU "/cri-containerd-" ID_E ".scope"},
	    {CG_CONTAINER, RUNTIME_CONTAINERD, ID_F, UID_1, KP_GU "/cri-containerd-" ID_F ".scope"},
	    {CG_CONTAINER, RUNTIME_CONTAINERD, ID_G, UID_2, KP_BU "/cri-containerd-" ID_G ".scope"},
	    {CG_CONTAINER, RUNTIME_CONTAINERD, ID_H, UID_3, KP_BE "/cri-containerd-" ID_H ".scope"},
	};

	walk_fixture(FIX_CG "containerd-systemd", 15, want, N_ELEMS(want));
}

Test(discovery, walk_kubepods_cgroupfs)
{
	static const struct expect want[] = {
	    {CG_POD, RUNTIME_NONE, "", UID_4, "/kubepods/pod" UID_4},
	    {CG_POD, RUNTIME_NONE, "", UID_5, "/kubepods/burstable/pod" UID_5},
	    {CG_POD, RUNTIME_NONE, "", UID_6, "/kubepods/besteffort/pod" UID_6},
	    {CG_CONTAINER, RUNTIME_KUBEPODS, ID_I, UID_4, "/kubepods/pod" UID_4 "/" ID_I},
	    {CG_CONTAINER, RUNTIME_KUBEPODS, ID_J, UID_5, "/kubepods/burstable/pod" UID_5 "/" ID_J},
	    {CG_CONTAINER, RUNTIME_KUBEPODS, ID_K, UID_6,
	     "/kubepods/besteffort/pod" UID_6 "/" ID_K},
	};

	walk_fixture(FIX_CG "kubepods-cgroupfs", 14, want, N_ELEMS(want));
}

Test(discovery, walk_crio)
{
#define KP_CRIO                                                                                    \
	"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"                          \
	"7405e6d0_0f64_5241_909e_832bb9424115.slice"
	static const struct expect want[] = {
	    {CG_POD, RUNTIME_NONE, "", UID_7, KP_CRIO},
	    {CG_CONTAINER, RUNTIME_CRIO, ID_L, UID_7, KP_CRIO "/crio-" ID_L ".scope"},
	    {CG_CONTAINER, RUNTIME_CRIO, ID_M, UID_7, KP_CRIO "/crio-" ID_M ".scope"},
	};

	walk_fixture(FIX_CG "crio", 12, want, N_ELEMS(want));
#undef KP_CRIO
}

Test(discovery, walk_podman)
{
	static const struct expect want[] = {
	    {CG_CONTAINER, RUNTIME_PODMAN, ID_N, "", "/machine.slice/libpod-" ID_N ".scope"},
	    {CG_CONTAINER, RUNTIME_PODMAN, ID_O, "", "/libpod_parent/libpod-" ID_O},
	    {CG_CONTAINER, RUNTIME_PODMAN, ID_P, "",
	     "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_P ".scope"},
	};

	walk_fixture(FIX_CG "podman", 14, want, N_ELEMS(want));
}

Test(discovery, walk_ctr_default_namespace)
{
	static const struct expect want[] = {
	    {CG_CONTAINER, RUNTIME_CONTAINERD, "redis", "", "/default/redis"},
	    {CG_CONTAINER, RUNTIME_CONTAINERD, ID_Q, "", "/default/" ID_Q},
	    {CG_CONTAINER, RUNTIME_CONTAINERD, ID_S, "", "/buildkit/" ID_S},
	    {CG_CONTAINER, RUNTIME_CONTAINERD, ID_T, "", "/mynamespace/" ID_T},
	};

	walk_fixture(FIX_CG "ctr", 11, want, N_ELEMS(want));
}

Test(discovery, walk_is_preorder_and_sorted)
{
	static const char *const order[] = {
	    "/",
	    "/docker",
	    "/docker/" ID_C,
	    "/docker/" ID_D,
	    "/docker/" ID_D "/sub",
	    "/init.scope",
	    "/system.slice",
	    "/system.slice/docker.service",
	};
	struct cg_tree t = {0};
	size_t i;

	cr_assert_eq(cg_tree__walk(&t, FIX_CG "docker-cgroupfs"), 0);
	cr_assert_eq(t.n, N_ELEMS(order));
	for (i = 0; i < t.n; i++)
		cr_expect_str_eq(t.nodes[i].path, order[i]);
	cr_expect_eq(t.nodes[1].parent, 0);
	cr_expect_eq(t.nodes[2].parent, 1);
	cr_expect_eq(t.nodes[3].parent, 1);
	cr_expect_eq(t.nodes[4].parent, 3);
	cr_expect_eq(t.nodes[5].parent, 0);
	cr_expect_eq(t.nodes[6].parent, 0);
	cr_expect_eq(t.nodes[7].parent, 6);
	cr_expect_eq(t.nodes[1].depth, 1);
	cr_expect_eq(t.nodes[2].depth, 2);
	cr_expect_eq(t.nodes[4].depth, 3);
	cr_expect_eq(t.nodes[5].depth, 1);
	cg_tree__free(&t);
}

Test(discovery, walk_find)
{
	struct cg_tree t = {0};
	uint64_t unknown = 1;
	struct stat st;
	size_t i;

	cr_assert_eq(cg_tree__walk(&t, FIX_CG "containerd-systemd"), 0);
	cr_assert_eq(stat(FIX_CG "containerd-systemd", &st), 0);
	cr_assert_eq(t.nodes[0].id, (uint64_t)st.st_ino);
	for (i = 0; i < t.n; i++)
		cr_assert_eq(cg_tree__find(&t, t.nodes[i].id), (int)i);
	/* an id that is none of the nodes' */
	for (;;) {
		for (i = 0; i < t.n && t.nodes[i].id != unknown; i++)
			;
		if (i == t.n)
			break;
		unknown++;
	}
	cr_assert_eq(cg_tree__find(&t, unknown), -1);
	cr_assert_eq(cg_tree__find(&t, UINT64_MAX), -1);
	cr_assert_eq(cg_tree__find(&t, 0), -1);
	cg_tree__free(&t);
	cr_assert_eq(cg_tree__find(&t, unknown), -1);
	cr_assert_eq(cg_tree__find(NULL, 1), -1);
}

Test(discovery, walk_errors_and_free)
{
	struct cg_tree t = {0};

	cg_tree__free(&t); /* zeroed */
	cg_tree__free(&t); /* twice */
	cr_assert_null(t.nodes);
	cr_assert_eq(cg_tree__walk(&t, FIX_CG "does-not-exist"), -ENOENT);
	cr_assert_eq(t.n, 0);
	cr_assert_null(t.nodes);
	cr_assert_null(t.index);
	cr_assert_eq(cg_tree__walk(&t, FIX_CG "ctr/default/redis/cgroup.procs"), -ENOTDIR);
	cr_assert_eq(t.n, 0);
	cr_assert_eq(cg_tree__walk(&t, FIX_CG "ctr/default/redis"), 0);
	cr_assert_eq(t.n, 1);
	cr_assert_str_eq(t.nodes[0].path, "/");
	cr_assert_eq(t.nodes[0].ident.kind, CG_OTHER);
	cg_tree__free(&t);
	cr_assert_eq(t.n, 0);
	cr_assert_eq(t.cap, 0);
	cr_assert_null(t.nodes);
	cr_assert_null(t.index);
}

Test(discovery, walk_does_not_follow_symlinks, .init = setup_symlinks, .fini = tmp_remove)
{
	char fixture[PATH_MAX], file[PATH_MAX];
	struct cg_tree t = {0};
	size_t i;
	int fd;

	cr_assert_not_null(realpath(FIX_CG "docker-systemd", fixture));
	tmp_mkdir("a");
	tmp_mkdir("a/b");
	tmp_mkdir("docker");
	tmp_mkdir("docker/" ID_C);
	/* a link out of the tree to a directory full of containers */
	tmp_symlink(fixture, "link");
	/* a loop, a link named like a container, a dangling link */
	tmp_symlink("..", "a/b/up");
	tmp_symlink(ID_C, "docker/" ID_D);
	tmp_symlink("/nonexistent", "a/dangling");
	snprintf(file, sizeof(file), "%s/a/file", tmp_root);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	cr_assert(fd >= 0);
	close(fd);

	cr_assert_eq(cg_tree__walk(&t, tmp_root), 0);
	check_tree_shape(&t);
	cr_expect_eq(t.n, 5);
	for (i = 0; i < t.n; i++) {
		cr_expect_null(strstr(t.nodes[i].path, "link"), "%s", t.nodes[i].path);
		cr_expect_null(strstr(t.nodes[i].path, "up"), "%s", t.nodes[i].path);
		cr_expect_null(strstr(t.nodes[i].path, "dangling"), "%s", t.nodes[i].path);
		cr_expect_null(strstr(t.nodes[i].path, "file"), "%s", t.nodes[i].path);
		cr_expect_null(strstr(t.nodes[i].path, ID_D), "%s", t.nodes[i].path);
	}
	static const struct expect want[] = {
	    {CG_CONTAINER, RUNTIME_DOCKER, ID_C, "", "/docker/" ID_C},
	};
	check_found(&t, want, N_ELEMS(want));
	cg_tree__free(&t);

	/* the root itself may be a symlink: the caller chose it */
	tmp_symlink(tmp_root, "a/self");
	snprintf(file, sizeof(file), "%s/a/self", tmp_root);
	cr_assert_eq(cg_tree__walk(&t, file), 0);
	cr_expect_eq(t.n, 5);
	cg_tree__free(&t);
}

#define DEEP 500

/*
 * A chain of DEEP directories "d", each with a leaf "e" beside the next "d". The leaves come
 * after the whole chain in pre-order, so the walk has to get back to ancestors whose fds it
 * closed long ago.
 */
Test(discovery, walk_deep_tree, .init = setup_deep, .fini = teardown_deep)
{
	struct cg_tree t = {0};
	struct rlimit rl;
	int fd = -1, next, i, fds;
	size_t k;

	fd = open(tmp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert(fd >= 0);
	for (i = 0; i < DEEP; i++) {
		cr_assert_eq(mkdirat(fd, "e", 0755), 0);
		cr_assert_eq(mkdirat(fd, "d", 0755), 0);
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		cr_assert(next >= 0);
		close(fd);
		fd = next;
	}
	close(fd);

	/* far fewer fds than levels: the walk must not keep one per level open */
	fds = count_open_fds();
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = (rlim_t)fds + 40;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);

	cr_assert_eq(cg_tree__walk(&t, tmp_root), 0);
	cr_assert_eq(count_open_fds(), fds, "fd leak");
	cr_assert_eq(t.n, 1 + 2 * DEEP);
	check_tree_shape(&t);
	/* the chain first, then the leaves from the deepest up */
	for (k = 1; k <= DEEP; k++) {
		cr_assert_eq(t.nodes[k].depth, (int32_t)k);
		cr_assert_eq(t.nodes[k].parent, (int32_t)k - 1);
		cr_assert_eq(strlen(t.nodes[k].path), 2 * k);
	}
	for (k = DEEP + 1; k < t.n; k++) {
		int32_t parent = (int32_t)(2 * DEEP - k);
		size_t len = strlen(t.nodes[k].path);

		cr_assert_eq(t.nodes[k].parent, parent, "node %zu", k);
		cr_assert_eq(t.nodes[k].depth, parent + 1);
		cr_assert_str_eq(t.nodes[k].path + len - 2, "/e");
	}
	cg_tree__free(&t);
}

Test(discovery, walk_live_cgroup2)
{
	char mnt[PATH_MAX];
	struct cg_tree t = {0};

	if (cgroup2__find_mount_file("/proc/self/mountinfo", mnt, sizeof(mnt)))
		cr_skip_test("no cgroup2 mount on this host");
	cr_assert_eq(cg_tree__walk(&t, mnt), 0, "walk %s", mnt);
	check_tree_shape(&t);
	cg_tree__free(&t);
}
