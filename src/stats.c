// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* tally stats: sample twice, INTERVAL apart, and print every container's usage. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tally/cpu.h"
#include "tally/net.h"
#include "collect.h"
#include "commands.h"
#include "discovery.h"
#include "json.h"
#include "report.h"
#include "log.h"
#include "util.h"

struct stats_opts {
	uint64_t interval_ns;
	bool json;
	bool all;
	struct cpu_opts cpu;
};

static void stats__usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tally stats [OPTIONS]\n\n"
	    "Load tally's BPF programs, sample every cgroup twice INTERVAL apart, and print one "
	    "row\n"
	    "per container (grouped under its Kubernetes pod): cumulative CPU seconds, CPU cores\n"
	    "used over the interval, context switches, and the writable layer's usage (bytes and\n"
	    "inodes, as du counts them, of the upperdir of the overlay that is the container's\n"
	    "root; '-' when the root is not an overlay, with the reason in --json), and the\n"
	    "bytes its processes' sockets received and sent since tally started (cgroup_skb).\n"
	    "--json adds each pod's interfaces (and those of a container with its own network\n"
	    "namespace outside a pod): the kernel's link counters of the host-side veth peer,\n"
	    "from the pod's side, with a TCP/UDP/ICMP/other breakdown counted by tc.\n\n"
	    "Options:\n"
	    "  -i, --interval DURATION  time between the two samples: 1s (default), 500ms, 2m, "
	    "...\n"
	    "  -j, --json               print one JSON document (CRI field names)\n"
	    "  -a, --all                list every cgroup v2 directory, containers or not\n"
	    "      --max-cgroups N      cgroups the BPF counter map holds (default %u)\n"
	    "  -h, --help               print this help\n\n"
	    "Cumulative CPU includes time from before tally started (seeded once from each\n"
	    "cgroup's cpu.stat); context switches and socket traffic are counted from when\n"
	    "tally starts; interface counters are the kernel's, since the device was created.\n"
	    "Needs root (CAP_BPF, CAP_PERFMON; CAP_NET_ADMIN and CAP_SYS_ADMIN for tc and for\n"
	    "looking into pod network namespaces), a kernel with BTF, and a cgroup v2 mount.\n",
	    TALLY_CPU_DEFAULT_MAX_CGROUPS);
}

static int stats__parse(int argc, char **argv, struct stats_opts *o)
{
	static const struct option longopts[] = {
	    {"interval", required_argument, NULL, 'i'},
	    {"json", no_argument, NULL, 'j'},
	    {"all", no_argument, NULL, 'a'},
	    {"max-cgroups", required_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	int opt;

	o->interval_ns = NSEC_PER_SEC;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "i:jah", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (duration__parse(optarg, &o->interval_ns) || !o->interval_ns) {
				log_err("invalid interval '%s': expected a positive duration such "
					"as 1s or 500ms",
					optarg);
				return -EINVAL;
			}
			break;
		case 'j':
			o->json = true;
			log__set_json(true);
			break;
		case 'a':
			o->all = true;
			break;
		case 'M':
			if (cmd__parse_max_cgroups(optarg, &o->cpu))
				return -EINVAL;
			break;
		case 'h':
			stats__usage(stdout);
			return 1;
		default:
			stats__usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_err("unexpected argument '%s' (see tally stats --help)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int cmd__parse_max_cgroups(const char *arg, struct cpu_opts *opts)
{
	if (count__parse(arg, &opts->max_cgroups)) {
		log_err("invalid --max-cgroups '%s': expected a positive count", arg);
		return -EINVAL;
	}
	return 0;
}

int cmd__preflight(char *root, size_t len)
{
	int err;

	err = cgroup2__find_mount_file("/proc/self/mountinfo", root, len);
	if (err == -ENOENT) {
		log_err("no cgroup v2 hierarchy is mounted (none in /proc/self/mountinfo): mount "
			"one with 'mount -t cgroup2 none /sys/fs/cgroup'");
		return err;
	}
	if (err) {
		log_err("failed to read mount table '/proc/self/mountinfo': %s", strerror(-err));
		return err;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		log_err("the kernel has no BTF (/sys/kernel/btf/vmlinux is missing): tally needs a "
			"kernel built with CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	return 0;
}

struct collector *cmd__collector_new(const char *root, const struct cpu_opts *opts,
				     const char *cmd)
{
	struct collector *c = collector__new(root, opts);
	int err;

	if (!c) {
		err = -errno;
		if (err == -EPERM || err == -EACCES)
			log_err("failed to load BPF programs: %s: run tally as root (it needs "
				"CAP_BPF and CAP_PERFMON)",
				strerror(-err));
		else
			log_err("failed to load BPF programs: %s (needs a kernel with BTF and BPF "
				"tracing programs; run 'tally -v %s' for the verifier log)",
				strerror(-err), cmd);
		errno = -err;
		return NULL;
	}
	if (collector__net_error(c))
		log_warn("network counters are unavailable (%s), continuing without them",
			 collector__net_error(c));
	return c;
}

/* 64-hex ids are shown as their first 12 characters, as docker and crictl do. */
static const char *short_id(const char *id, char *buf)
{
	if (strlen(id) != 64)
		return id;
	memcpy(buf, id, 12);
	buf[12] = '\0';
	return buf;
}

static void print_json(const struct collector *c, const struct stats_opts *o)
{
	struct jw *w = jw__new(stdout, false);

	if (!w)
		return;
	report__document(w, c, o->all);
	jw__free(w);
	fputc('\n', stdout);
}

/* Table cells hold any byte a cgroup name can: show non-printable ones as \xNN. */
static void print_escaped(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p >= 0x7f || *p == '\\')
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

static void print_row(const struct cg_usage *u, const char *id, const char *pod, const char *rt)
{
	char cores[16] = "-", used[24] = "-", inodes[24] = "-", rx[24] = "-", tx[24] = "-";

	if (u->has_rate)
		snprintf(cores, sizeof(cores), "%.3f", u->nano_cores / 1e9);
	if (u->upperdir) {
		snprintf(used, sizeof(used), "%llu", (unsigned long long)u->layer.used_bytes);
		snprintf(inodes, sizeof(inodes), "%llu", (unsigned long long)u->layer.inodes_used);
	}
	if (u->has_net) {
		snprintf(rx, sizeof(rx), "%llu", (unsigned long long)u->net.rx_bytes);
		snprintf(tx, sizeof(tx), "%llu", (unsigned long long)u->net.tx_bytes);
	}
	printf("%-12s  %-36s  %-10s  %12.3f  %6s  %10llu  %12s  %8s  %12s  %12s  ", id, pod, rt,
	       u->cpu_ns / 1e9, cores, (unsigned long long)u->switches, used, inodes, rx, tx);
	print_escaped(u->node->path);
	putchar('\n');
}

static void print_table(const struct collector *c, const struct stats_opts *o)
{
	size_t n = collector__count(c);
	struct cg_usage u;
	char buf[16];

	printf("%-12s  %-36s  %-10s  %12s  %6s  %10s  %12s  %8s  %12s  %12s  %s\n", "CONTAINER",
	       "POD", "RUNTIME", "CPU_SECONDS", "CORES", "SWITCHES", "USED_BYTES", "INODES",
	       "NET_RX_BYTES", "NET_TX_BYTES", "CGROUP");
	/* Each pod, then its containers. */
	for (size_t i = 0; i < n; i++) {
		collector__usage(c, i, &u);
		if (u.node->ident.kind != CG_POD)
			continue;
		print_row(&u, "-", u.node->ident.pod_uid, "pod");
		for (size_t j = 0; j < n; j++) {
			const struct cg_node *x = collector__node(c, j);
			struct cg_usage v;

			if (x->ident.kind != CG_CONTAINER ||
			    strcmp(x->ident.pod_uid, u.node->ident.pod_uid))
				continue;
			collector__usage(c, j, &v);
			print_row(&v, short_id(x->ident.id, buf), x->ident.pod_uid,
				  runtime__name(x->ident.runtime));
		}
	}
	for (size_t i = 0; i < n; i++) {
		collector__usage(c, i, &u);
		if (u.node->ident.kind != CG_CONTAINER || u.node->ident.pod_uid[0])
			continue;
		print_row(&u, short_id(u.node->ident.id, buf), "-",
			  runtime__name(u.node->ident.runtime));
	}
	if (!o->all)
		return;
	for (size_t i = 0; i < n; i++) {
		collector__usage(c, i, &u);
		if (u.node->ident.kind == CG_OTHER)
			print_row(&u, "-", "-", "-");
	}
}

static int sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = ns / NSEC_PER_SEC, .tv_nsec = ns % NSEC_PER_SEC};

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts))
		if (errno != EINTR)
			return -errno;
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	struct stats_opts o = {};
	struct collector *c = NULL;
	char root[PATH_MAX];
	int err, ret = 1;

	err = stats__parse(argc, argv, &o);
	if (err)
		return err > 0 ? 0 : 2;
	if (cmd__preflight(root, sizeof(root)))
		return 1;
	c = cmd__collector_new(root, &o.cpu, "stats");
	if (!c)
		return 1;
	log_debug("cgroup2 at '%s'; sched_switch via %s; %s reads; removal %s", root,
		  cpu__switch_hook(collector__cpu(c)),
		  cpu__batch_reads(collector__cpu(c)) ? "batch" : "per-key",
		  cpu__tracks_removal(collector__cpu(c)) ? "tracepoint" : "reconciled by walks");
	if (collector__net(c))
		log_debug("network: cgroup_skb at '%s'; device counters via %s", root,
			  net__tc_mode(collector__net(c)));
	err = collector__collect(c);
	if (!err) {
		log_debug("first sample taken, the second in %llu ms",
			  (unsigned long long)(o.interval_ns / 1000000));
		err = sleep_ns(o.interval_ns);
	}
	if (!err)
		err = collector__collect(c);
	if (err) {
		log_err("failed to collect cgroup usage under '%s': %s", root, strerror(-err));
		goto out;
	}
	if (collector__cpu_sample(c)->dropped_updates)
		log_warn("the BPF counter map is full (%u cgroups): %llu updates dropped, raise "
			 "--max-cgroups",
			 cpu__max_cgroups(collector__cpu(c)),
			 (unsigned long long)collector__cpu_sample(c)->dropped_updates);
	if (o.json)
		print_json(c, &o);
	else
		print_table(c, &o);
	ret = fflush(stdout) ? 1 : 0;
out:
	collector__free(c);
	return ret;
}
