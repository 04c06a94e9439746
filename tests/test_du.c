// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `tally du` end to end: the binary against du(1) of the same trees, --json through an
 * independent parser (python3), --watch following changes without walking again, and its
 * one-line errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "disk_helpers.h"
#include "helpers.h"

#define TALLY "build/tally"

static void fini(void)
{
	dh_cleanup();
}

TestSuite(du, .fini = fini, .timeout = 60);

/* A small tree with what du counts specially: a hard link, a symlink out, a sparse file. */
static char *make_tree(const char *name)
{
	const char *T = dh_path("%s/T", dh_tmpdir(name));

	dh_mkdir(T);
	dh_mkdir(dh_path("%s/d", T));
	dh_write(dh_path("%s/d/a", T), 70000);
	dh_link(dh_path("%s/d/a", T), dh_path("%s/a-again", T));
	dh_symlink("/", dh_path("%s/root", T));
	dh_write(dh_path("%s/sparse", T), 0);
	dh_ftruncate(dh_path("%s/sparse", T), 1 << 20);
	return strdup(T);
}

Test(du, prints_what_du_prints)
{
	char *T = make_tree("du-plain"), *U = make_tree("du-plain2");
	char cmd[1024], out[4096], p1[1024], p2[1024];
	unsigned long long b1, i1, b2, i2;
	int rc;

	snprintf(cmd, sizeof(cmd), TALLY " du %s %s", T, U);
	rc = th_run(cmd, out, sizeof(out));
	cr_assert_eq(rc, 0, "%s: exit %d: %s", cmd, rc, out);
	cr_assert_eq(sscanf(out, "%llu\t%llu\t%1023[^\n]\n%llu\t%llu\t%1023[^\n]", &b1, &i1, p1,
			    &b2, &i2, p2),
		     6, "unexpected output: %s", out);
	cr_expect_str_eq(p1, T);
	cr_expect_str_eq(p2, U);
	cr_expect_eq(b1, dh_du_bytes(T), "bytes %llu, du %llu", b1,
		     (unsigned long long)dh_du_bytes(T));
	cr_expect_eq(i1, dh_du_inodes(T), "inodes %llu, du %llu", i1,
		     (unsigned long long)dh_du_inodes(T));
	cr_expect_eq(b2, dh_du_bytes(U));
	cr_expect_eq(i2, dh_du_inodes(U));
	free(T);
	free(U);
}

Test(du, json_document)
{
	char *T = make_tree("du-json");
	char cmd[2048], out[4096];
	unsigned long long b, i;
	int rc;

	snprintf(cmd, sizeof(cmd),
		 TALLY " du --json %s | python3 -c '"
		       "import json,sys\n"
		       "d = json.load(sys.stdin)\n"
		       "t = d[\"trees\"]\n"
		       "assert len(t) == 1 and t[0][\"path\"] == \"%s\", d\n"
		       "assert t[0][\"timestamp_ns\"] > 1.6e18, d\n"
		       "print(t[0][\"used_bytes\"], t[0][\"inodes_used\"])'",
		 T, T);
	rc = th_run(cmd, out, sizeof(out));
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_eq(sscanf(out, "%llu %llu", &b, &i), 2, "unexpected output: %s", out);
	cr_expect_eq(b, dh_du_bytes(T));
	cr_expect_eq(i, dh_du_inodes(T));
	free(T);
}

/* Read lines from fd until one starts with want (a "BYTES\tINODES" prefix), for up to 5 s. */
static bool wait_line(int fd, const char *want, char *seen, size_t len)
{
	size_t n = 0;
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	seen[0] = '\0';
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char *line;
		ssize_t r;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5)
			return false;
		if (poll(&p, 1, 200) <= 0)
			continue;
		r = read(fd, seen + n, len - n - 1);
		if (r <= 0)
			return false;
		n += r;
		seen[n] = '\0';
		for (line = seen; line && *line;
		     line = strchr(line, '\n'), line = line ? line + 1 : NULL)
			if (!strncmp(line, want, strlen(want)))
				return true;
		if (n > len / 2) {
			/* Keep the last partial line only. */
			char *last = strrchr(seen, '\n');

			if (last) {
				n = strlen(last + 1);
				memmove(seen, last + 1, n + 1);
			}
		}
	}
}

Test(du, watch_follows_changes_and_stops_on_sigterm)
{
	char *T = make_tree("du-watch");
	char want[64], seen[8192];
	int p[2], status;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execl(TALLY, "tally", "du", "--watch", "--interval", "100ms", T, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	snprintf(want, sizeof(want), "%llu\t%llu\t", (unsigned long long)dh_du_bytes(T),
		 (unsigned long long)dh_du_inodes(T));
	cr_expect(wait_line(p[0], want, seen, sizeof(seen)), "first line: want %s, got: %s", want,
		  seen);

	dh_write(dh_path("%s/d/new", T), 300000);
	snprintf(want, sizeof(want), "%llu\t%llu\t", (unsigned long long)dh_du_bytes(T),
		 (unsigned long long)dh_du_inodes(T));
	cr_expect(wait_line(p[0], want, seen, sizeof(seen)), "after a write: want %s, got: %s",
		  want, seen);

	cr_assert_eq(dh_rm_rf(dh_path("%s/d", T)), 0);
	snprintf(want, sizeof(want), "%llu\t%llu\t", (unsigned long long)dh_du_bytes(T),
		 (unsigned long long)dh_du_inodes(T));
	cr_expect(wait_line(p[0], want, seen, sizeof(seen)), "after rm -rf: want %s, got: %s", want,
		  seen);

	kill(pid, SIGTERM);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM: status 0x%x", status);
	close(p[0]);
	free(T);
}

Test(du, errors_say_what_is_wrong)
{
	char *T = make_tree("du-errors");
	char cmd[1024], out[4096];
	int rc;

	snprintf(cmd, sizeof(cmd), TALLY " du %s/nonexistent 2>&1", T);
	rc = th_run(cmd, out, sizeof(out));
	cr_expect_eq(rc, 1, "missing dir: exit %d", rc);
	cr_expect(strstr(out, "failed to walk") && strstr(out, "No such file or directory"), "%s",
		  out);

	snprintf(cmd, sizeof(cmd), TALLY " du %s/root 2>&1", T);
	rc = th_run(cmd, out, sizeof(out));
	cr_expect_eq(rc, 1, "symlink: exit %d", rc);
	cr_expect(strstr(out, "symlink") != NULL, "a symlink is refused, and said so: %s", out);

	snprintf(cmd, sizeof(cmd), TALLY " du --json %s/sparse", T);
	rc = th_run(cmd, out, sizeof(out));
	cr_expect_eq(rc, 1, "a file: exit %d", rc);
	cr_expect(strstr(out, "{\"error\":") == out, "JSON error document: %s", out);

	rc = th_run(TALLY " du 2>&1", out, sizeof(out));
	cr_expect_eq(rc, 2, "no argument: exit %d", rc);
	cr_expect(strstr(out, "no directory given") != NULL, "%s", out);

	rc = th_run(TALLY " du --interval 0 . 2>&1", out, sizeof(out));
	cr_expect_eq(rc, 2, "bad interval: exit %d", rc);

	rc = th_run(TALLY " du --mark bogus . 2>&1", out, sizeof(out));
	cr_expect_eq(rc, 2, "bad mark mode: exit %d", rc);

	rc = th_run(TALLY " du --help", out, sizeof(out));
	cr_expect_eq(rc, 0);
	cr_expect(strstr(out, "Usage: tally du") != NULL, "%s", out);
	free(T);
}
