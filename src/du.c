// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* tally du: the disk engine on any directory; with --watch, kept current from fanotify. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "commands.h"
#include "disk.h"
#include "json.h"
#include "log.h"
#include "util.h"

struct du_opts {
	bool watch;
	bool json;
	uint64_t interval_ns;
	uint64_t reconcile_ns;
	enum disk_mark_mode mark;
};

static void du__usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tally du [OPTIONS] DIR...\n\n"
	    "Print what 'du -s --block-size=1' and 'du -s --inodes' print for each DIR: bytes\n"
	    "used (st_blocks * 512 over unique inodes, hard links once) and inodes used (the\n"
	    "top directory included). Symlinks are never followed, DIR itself included, and\n"
	    "the walk stays on DIR's filesystem.\n\n"
	    "With --watch, each DIR is walked once and then kept exact from fanotify events:\n"
	    "a line is printed at every INTERVAL tick where a number changed, without walking\n"
	    "again. Stop with Ctrl-C.\n\n"
	    "Options:\n"
	    "  -w, --watch               keep printing as the trees change\n"
	    "  -i, --interval DURATION   tick of --watch: 1s (default), 200ms, ...\n"
	    "      --reconcile DURATION  with --watch, walk each tree again this often to catch\n"
	    "                            what fanotify cannot see (writes through mmap); drift\n"
	    "                            found is reported; 0 turns it off (default 10m)\n"
	    "      --mark MODE           filesystem (default: one mark per filesystem) or inode\n"
	    "                            (one mark per directory)\n"
	    "  -j, --json                one JSON document per output (JSON lines with --watch)\n"
	    "  -h, --help                print this help\n\n"
	    "Output: BYTES<TAB>INODES<TAB>DIR. Needs root (fanotify filesystem marks and file\n"
	    "handles need CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH).\n");
}

static int du__parse(int argc, char **argv, struct du_opts *o)
{
	static const struct option longopts[] = {
	    {"watch", no_argument, NULL, 'w'},
	    {"interval", required_argument, NULL, 'i'},
	    {"reconcile", required_argument, NULL, 'R'},
	    {"mark", required_argument, NULL, 'm'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	int opt;

	o->interval_ns = NSEC_PER_SEC;
	o->reconcile_ns = 600 * NSEC_PER_SEC;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "wi:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'w':
			o->watch = true;
			break;
		case 'i':
			if (duration__parse(optarg, &o->interval_ns) || !o->interval_ns) {
				log_err("invalid interval '%s': expected a positive duration such "
					"as 1s or 200ms",
					optarg);
				return -EINVAL;
			}
			break;
		case 'R':
			if (duration__parse(optarg, &o->reconcile_ns)) {
				log_err(
				    "invalid --reconcile '%s': expected a duration such as 10m, "
				    "or 0",
				    optarg);
				return -EINVAL;
			}
			break;
		case 'm':
			if (!strcmp(optarg, "filesystem")) {
				o->mark = DISK_MARK_FILESYSTEM;
			} else if (!strcmp(optarg, "inode")) {
				o->mark = DISK_MARK_INODE;
			} else {
				log_err("invalid --mark '%s': expected filesystem or inode",
					optarg);
				return -EINVAL;
			}
			break;
		case 'j':
			o->json = true;
			log__set_json(true);
			break;
		case 'h':
			du__usage(stdout);
			return 1;
		default:
			du__usage(stderr);
			return -EINVAL;
		}
	}
	if (optind == argc) {
		log_err("no directory given (see tally du --help)");
		return -EINVAL;
	}
	return 0;
}

struct du_tree {
	struct disk_tree *t;
	struct disk_usage u;
	bool gone;
};

static void print_usage(const struct du_opts *o, struct du_tree *v, size_t n)
{
	if (o->json) {
		struct jw *w = jw__new(stdout, false);

		if (!w)
			return;
		jw__begin_object(w);
		jw__key(w, "trees");
		jw__begin_array(w);
		for (size_t i = 0; i < n; i++) {
			jw__begin_object(w);
			jw__kv_string(w, "path", disk__tree_path(v[i].t));
			if (v[i].gone) {
				jw__kv_string(w, "error", "removed");
			} else {
				jw__kv_u64(w, "timestamp_ns", v[i].u.timestamp_ns);
				jw__kv_u64(w, "used_bytes", v[i].u.used_bytes);
				jw__kv_u64(w, "inodes_used", v[i].u.inodes_used);
			}
			jw__end_object(w);
		}
		jw__end_array(w);
		jw__end_object(w);
		jw__free(w);
		fputc('\n', stdout);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (v[i].gone)
				printf("-\t-\t%s\n", disk__tree_path(v[i].t));
			else
				printf("%llu\t%llu\t%s\n", (unsigned long long)v[i].u.used_bytes,
				       (unsigned long long)v[i].u.inodes_used,
				       disk__tree_path(v[i].t));
		}
	}
	fflush(stdout);
}

/* Refresh every tree's numbers; true when one changed. */
static bool du__refresh(struct disk *d, struct du_tree *v, size_t n)
{
	bool changed = false;

	for (size_t i = 0; i < n; i++) {
		struct disk_usage u;

		if (v[i].gone)
			continue;
		if (disk__usage(d, v[i].t, &u)) {
			log_warn("'%s' was removed", disk__tree_path(v[i].t));
			v[i].gone = changed = true;
			continue;
		}
		if (u.used_bytes != v[i].u.used_bytes || u.inodes_used != v[i].u.inodes_used)
			changed = true;
		v[i].u = u;
	}
	return changed;
}

/* Say once what the engine had to repair since the last report. */
static void report_repairs(struct disk *d, struct disk_stats *last)
{
	struct disk_stats s;

	disk__stats(d, &s);
	if (s.rescans != last->rescans)
		log_warn("the fanotify queue overflowed: %llu tree walks redone",
			 (unsigned long long)(s.rescans - last->rescans));
	if (s.drift_found != last->drift_found)
		log_warn("reconciliation found drift (writes through mmap or links outside the "
			 "tree): %+lld bytes, %+lld inodes, corrected",
			 (long long)(s.drift_bytes - last->drift_bytes),
			 (long long)(s.drift_inodes - last->drift_inodes));
	*last = s;
}

static int du__watch(struct disk *d, const struct du_opts *o, struct du_tree *v, size_t n)
{
	struct itimerspec its = {
	    .it_interval = {o->interval_ns / NSEC_PER_SEC, o->interval_ns % NSEC_PER_SEC},
	    .it_value = {o->interval_ns / NSEC_PER_SEC, o->interval_ns % NSEC_PER_SEC},
	};
	struct disk_stats last;
	int tfd = -1, sfd = -1, err = 0;
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0 ||
	    (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)) < 0 ||
	    timerfd_settime(tfd, 0, &its, NULL)) {
		err = -errno;
		log_err("failed to set up the watch loop: %s", strerror(errno));
		goto out;
	}
	if (o->reconcile_ns) {
		err = disk__start_reconciler(d, o->reconcile_ns);
		if (err) {
			log_err("failed to start the reconciliation thread: %s", strerror(-err));
			goto out;
		}
	}
	disk__stats(d, &last);
	for (;;) {
		struct pollfd p[3] = {
		    {.fd = disk__fd(d), .events = POLLIN},
		    {.fd = tfd, .events = POLLIN},
		    {.fd = sfd, .events = POLLIN},
		};
		uint64_t ticks;

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (p[2].revents)
			break; /* SIGINT or SIGTERM: a clean stop */
		if (p[0].revents) {
			/* Drain now so the queue never fills; apply at the tick. */
			err = disk__read(d);
			if (err < 0)
				break;
			err = 0;
		}
		if (p[1].revents && read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks)) {
			err = disk__process(d);
			if (err < 0)
				break;
			err = 0;
			report_repairs(d, &last);
			if (du__refresh(d, v, n))
				print_usage(o, v, n);
		}
	}
	if (err)
		log_err("failed to follow changes: %s", strerror(-err));
out:
	if (tfd >= 0)
		close(tfd);
	if (sfd >= 0)
		close(sfd);
	return err;
}

int cmd_du(int argc, char **argv)
{
	struct du_opts o = {};
	struct du_tree *v = NULL;
	struct disk *d = NULL;
	size_t n = 0;
	int err, ret = 1;

	err = du__parse(argc, argv, &o);
	if (err)
		return err > 0 ? 0 : 2;
	d = disk__new(&(struct disk_opts){.mark_mode = o.mark});
	if (!d) {
		if (errno == EPERM)
			log_err("failed to start fanotify: %s: run tally as root (it needs "
				"CAP_SYS_ADMIN)",
				strerror(errno));
		else
			log_err("failed to start fanotify: %s", strerror(errno));
		return 1;
	}
	v = calloc(argc - optind, sizeof(*v));
	if (!v) {
		log_err("failed to allocate trees: %s", strerror(ENOMEM));
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		v[n].t = disk__track(d, argv[i]);
		if (!v[n].t) {
			struct stat st;

			err = errno;
			if ((err == ELOOP || err == ENOTDIR) && !lstat(argv[i], &st) &&
			    S_ISLNK(st.st_mode))
				log_err("failed to walk '%s': it is a symlink (tally never follows "
					"one; give the directory it points to)",
					argv[i]);
			else if (err == EOPNOTSUPP)
				log_err("failed to walk '%s': its filesystem does not support file "
					"handles or fanotify filesystem marks",
					argv[i]);
			else
				log_err("failed to walk '%s': %s", argv[i], strerror(err));
			goto out;
		}
		n++;
	}
	err = disk__process(d);
	if (err < 0) {
		log_err("failed to apply changes: %s", strerror(-err));
		goto out;
	}
	du__refresh(d, v, n);
	print_usage(&o, v, n);
	ret = 0;
	if (o.watch)
		ret = du__watch(d, &o, v, n) ? 1 : 0;
	if (fflush(stdout))
		ret = 1;
out:
	for (size_t i = 0; i < n; i++)
		disk__untrack(d, v[i].t);
	free(v);
	disk__free(d);
	return ret;
}
