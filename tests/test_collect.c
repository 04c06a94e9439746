// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The collector's view of a container's life, on the real kernel: a container whose process
 * joins its cgroup before it switches to its overlay root (what runc does) still gets its
 * writable layer, measured as du measures the upper dir.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "collect.h"
#include "disk_helpers.h"
#include "helpers.h"

static struct collector *coll;

static void fini(void)
{
	collector__free(coll);
	coll = NULL;
	th_cleanup();
	dh_cleanup();
}

TestSuite(collect, .fini = fini, .timeout = 120);

struct late_root {
	const char *root;
	int go;	   /* read end: one byte, then chroot */
	int ready; /* write end: one byte once in the new root */
};

static void late_pivot(void *arg)
{
	struct late_root *l = arg;
	char b;

	if (read(l->go, &b, 1) != 1 || chroot(l->root) || chdir("/"))
		_exit(1);
	if (write(l->ready, "x", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static struct cg_usage usage_of(struct collector *c, uint64_t cgid)
{
	struct cg_usage u;
	int i;

	cr_assert_eq(collector__collect(c), 0);
	i = collector__find(c, cgid);
	cr_assert_geq(i, 0, "container %llu not found", (unsigned long long)cgid);
	collector__usage(c, i, &u);
	return u;
}

Test(collect, layer_found_after_a_late_switch_to_the_overlay_root)
{
	const char *top = th_test_cgroup("collect-late") + strlen(th_cgroot()) + 1;
	int go[2], ready[2];
	struct late_root l;
	struct dh_overlay o;
	struct cg_usage u;
	char rel[512], b;
	const char *cg;
	uint64_t cgid;

	dh_overlay_prepare(&o, "collect-late");
	dh_write(dh_path("%s/in-upper", o.upper), 12345);
	dh_overlay_mount(&o);
	snprintf(rel, sizeof(rel),
		 "%s/docker-1a7e%08x0ddba11f00dfacade5eedc0de0123456789abcdef0123456789a.scope", top,
		 (unsigned)getpid());
	cg = th_cgroup_create(rel);
	cgid = th_cgroup_id(cg);
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	l = (struct late_root){.root = o.merged, .go = go[0], .ready = ready[1]};
	th_child_start(cg, late_pivot, &l);
	close(go[0]);
	close(ready[1]);

	coll = collector__new(th_cgroot(), NULL);
	cr_assert_not_null(coll, "collector__new: %s", strerror(errno));
	/* In its cgroup, still on the host's root: no layer, for now. */
	u = usage_of(coll, cgid);
	cr_expect_null(u.upperdir);
	cr_expect_not_null(u.layer_why);
	th_sleep_ms(300);
	u = usage_of(coll, cgid);
	cr_expect_null(u.upperdir);

	cr_assert_eq(write(go[1], "x", 1), 1);
	cr_assert_eq(read(ready[0], &b, 1), 1, "the container process failed to switch root");
	u = usage_of(coll, cgid);
	cr_assert_not_null(u.upperdir, "no layer after the switch: %s", u.layer_why);
	cr_expect_str_eq(u.upperdir, o.upper);
	cr_expect_eq(u.layer.used_bytes, dh_du_bytes(o.upper));
	cr_expect_eq(u.layer.inodes_used, dh_du_inodes(o.upper));
	close(go[1]);
	close(ready[0]);
}
