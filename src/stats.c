// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tally stats: print every container's usage. From a running agent (its local socket) when
 * there is one, else standalone: load the programs and sample twice, INTERVAL apart.
 */
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
#include "client.h"
#include "collect.h"
#include "commands.h"
#include "discovery.h"
#include "json.h"
#include "report.h"
#include "log.h"
#include "util.h"

/*
 * How long to wait for the agent's answer: it may be in a collection (a first one attaching tc
 * to hundreds of veths takes seconds) or serving many scrapes.
 */
#define STATS_AGENT_TIMEOUT_MS 30000

struct stats_opts {
	uint64_t interval_ns;
	bool json;
	bool all;
	struct cpu_opts cpu;
	const char *socket; /* NULL: never ask an agent */
	bool standalone;
	bool interval_set, max_cgroups_set; /* given, but the agent has its own */
};

static void stats__usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tally stats [OPTIONS]\n\n"
	    "Print one row per container (grouped under its Kubernetes pod). When a tally agent\n"
	    "answers on its local socket, the numbers are its latest collection and nothing is\n"
	    "loaded; otherwise tally stats works standalone: it loads the BPF programs, samples\n"
	    "every cgroup twice INTERVAL apart, and prints one row\n"
	    "per container (grouped under its Kubernetes pod): cumulative CPU seconds, CPU cores\n"
	    "used over the interval, context switches, and the writable layer's usage (bytes and\n"
	    "inodes, as du counts them, of the upperdir of the overlay that is the container's\n"
	    "root; '-' when the root is not an overlay, with the reason in --json), and the\n"
	    "bytes its processes' sockets received and sent since tally started (cgroup_skb).\n"
	    "--json adds each pod's interfaces (and those of a container with its own network\n"
	    "namespace outside a pod): the kernel's link counters of the host-side veth peer,\n"
	    "from the pod's side, with a TCP/UDP/ICMP/other breakdown counted by tc.\n\n"
	    "Options:\n"
	    "  -i, --interval DURATION  standalone: time between the two samples: 1s (default),\n"
	    "                           500ms, 2m, ... Through an agent, CORES is over the\n"
	    "                           agent's last two collections (its --period apart; with\n"
	    "                           --period 0, since its previous collection), and\n"
	    "                           --interval is ignored with a warning\n"
	    "  -j, --json               print one JSON document (CRI field names)\n"
	    "  -a, --all                list every cgroup v2 directory, containers or not (the\n"
	    "                           agent collects them all, so this works through it too)\n"
	    "      --max-cgroups N      standalone: cgroups the BPF counter map holds (default\n"
	    "                           %u); an agent has its own\n"
	    "  -s, --socket PATH        the agent's socket (default %s; 'none': do\n"
	    "                           not look for an agent)\n"
	    "      --standalone         do not ask an agent even if one is running\n"
	    "  -h, --help               print this help\n\n"
	    "When nothing listens on the socket (no file, or connection refused), tally stats\n"
	    "works standalone and says so with -v. An agent that answers with an error, or not\n"
	    "within %u s, is an error (exit 1), not a reason to go standalone.\n"
	    "Cumulative CPU includes time from before tally started (seeded once from each\n"
	    "cgroup's cpu.stat); context switches and socket traffic are counted from when\n"
	    "tally starts; interface counters are the kernel's, since the device was created.\n"
	    "Needs root (CAP_BPF, CAP_PERFMON; CAP_NET_ADMIN and CAP_SYS_ADMIN for tc and for\n"
	    "looking into pod network namespaces), a kernel with BTF, and a cgroup v2 mount.\n"
	    "Through the agent: root (the socket is root's, mode 0600).\n",
	    TALLY_CPU_DEFAULT_MAX_CGROUPS, CLIENT_DEFAULT_SOCKET, STATS_AGENT_TIMEOUT_MS / 1000);
}

static int stats__parse(int argc, char **argv, struct stats_opts *o)
{
	static const struct option longopts[] = {
	    {"interval", required_argument, NULL, 'i'},
	    {"json", no_argument, NULL, 'j'},
	    {"all", no_argument, NULL, 'a'},
	    {"max-cgroups", required_argument, NULL, 'M'},
	    {"socket", required_argument, NULL, 's'},
	    {"standalone", no_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	int opt;

	o->interval_ns = NSEC_PER_SEC;
	o->socket = CLIENT_DEFAULT_SOCKET;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "i:jas:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (duration__parse(optarg, &o->interval_ns) || !o->interval_ns) {
				log_err("invalid interval '%s': expected a positive duration such "
					"as 1s or 500ms",
					optarg);
				return -EINVAL;
			}
			o->interval_set = true;
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
			o->max_cgroups_set = true;
			break;
		case 's':
			if (cmd__parse_socket(optarg, &o->socket))
				return -EINVAL;
			break;
		case 'S':
			o->standalone = true;
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

int cmd__parse_socket(const char *arg, const char **path)
{
	if (!strcmp(arg, "none")) {
		*path = NULL;
		return 0;
	}
	/* sockaddr_un's sun_path: 108 bytes with the NUL. */
	if (!*arg || strlen(arg) >= 108) {
		log_err("invalid --socket '%s': expected a path of 1 to 107 bytes, or none", arg);
		return -EINVAL;
	}
	*path = arg;
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

static void print_json(FILE *f, const struct collector *c, bool all)
{
	struct jw *w = jw__new(f, false);

	if (!w)
		return;
	report__document(w, c, all);
	jw__free(w);
	fputc('\n', f);
}

/* Table cells hold any byte a cgroup name can: show non-printable ones as \xNN. */
static void print_escaped(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p >= 0x7f || *p == '\\')
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

static void print_row(FILE *f, const struct cg_usage *u, const char *id, const char *pod,
		      const char *rt)
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
	fprintf(f, "%-12s  %-36s  %-10s  %12.3f  %6s  %10llu  %12s  %8s  %12s  %12s  ", id, pod, rt,
		u->cpu_ns / 1e9, cores, (unsigned long long)u->switches, used, inodes, rx, tx);
	print_escaped(f, u->node->path);
	fputc('\n', f);
}

static void print_table(FILE *f, const struct collector *c, bool all)
{
	size_t n = collector__count(c), pos, j;
	struct pod_members pm;
	struct cg_usage u;
	char buf[16];

	fprintf(f, "%-12s  %-36s  %-10s  %12s  %6s  %10s  %12s  %8s  %12s  %12s  %s\n", "CONTAINER",
		"POD", "RUNTIME", "CPU_SECONDS", "CORES", "SWITCHES", "USED_BYTES", "INODES",
		"NET_RX_BYTES", "NET_TX_BYTES", "CGROUP");
	/* Each pod, then its containers. */
	pod_members__init(&pm, c);
	for (size_t i = 0; i < n; i++) {
		if (collector__node(c, i)->ident.kind != CG_POD)
			continue;
		collector__usage(c, i, &u);
		print_row(f, &u, "-", u.node->ident.pod_uid, "pod");
		for (pos = 0; pod_members__next(&pm, u.node->ident.pod_uid, &pos, &j);) {
			const struct cg_node *x = collector__node(c, j);
			struct cg_usage v;

			collector__usage(c, j, &v);
			print_row(f, &v, short_id(x->ident.id, buf), x->ident.pod_uid,
				  runtime__name(x->ident.runtime));
		}
	}
	pod_members__free(&pm);
	for (size_t i = 0; i < n; i++) {
		const struct cg_node *x = collector__node(c, i);

		if (x->ident.kind != CG_CONTAINER || x->ident.pod_uid[0])
			continue;
		collector__usage(c, i, &u);
		print_row(f, &u, short_id(x->ident.id, buf), "-", runtime__name(x->ident.runtime));
	}
	if (!all)
		return;
	for (size_t i = 0; i < n; i++) {
		if (collector__node(c, i)->ident.kind != CG_OTHER)
			continue;
		collector__usage(c, i, &u);
		print_row(f, &u, "-", "-", "-");
	}
}

void stats__print(FILE *f, const struct collector *c, bool json, bool all)
{
	if (json)
		print_json(f, c, all);
	else
		print_table(f, c, all);
}

/* The first line of an agent's error body, for a one-line message. */
static void error_line(const struct client_resp *r, char *buf, size_t len)
{
	size_t n = strcspn(r->body, "\r\n");

	if (n >= len)
		n = len - 1;
	memcpy(buf, r->body, n);
	buf[n] = '\0';
}

/*
 * Ask the agent for what standalone would print. 0: printed (or an error logged, in *ret);
 * -ENOENT / -ECONNREFUSED: no agent there, go standalone.
 */
static int stats__via_agent(const struct stats_opts *o, int *ret)
{
	struct client_resp r;
	char path[64], msg[512];
	int err;

	snprintf(path, sizeof(path), "/v1/stats?format=%s&all=%d", o->json ? "json" : "table",
		 o->all);
	err = client__get(o->socket, path, STATS_AGENT_TIMEOUT_MS, &r);
	if (err == -ENOENT || err == -ECONNREFUSED)
		return err;
	*ret = 1;
	if (err == -ETIMEDOUT) {
		log_err("failed to get stats from the agent at '%s': no answer within %u s",
			o->socket, STATS_AGENT_TIMEOUT_MS / 1000);
		return 0;
	}
	if (err) {
		log_err("failed to get stats from the agent at '%s': %s%s", o->socket,
			strerror(-err),
			err == -EACCES ? " (the socket is root's: run tally stats as root)" : "");
		return 0;
	}
	if (r.status != 200) {
		error_line(&r, msg, sizeof(msg));
		log_err("failed to get stats from the agent at '%s': it answered %d: %s", o->socket,
			r.status, msg);
		client_resp__free(&r);
		return 0;
	}
	log_info("printing the latest collection of the agent at '%s'", o->socket);
	if (o->interval_set)
		log_warn("--interval is ignored through the agent: CORES is over its last two "
			 "collections (--standalone samples over INTERVAL)");
	if (o->max_cgroups_set)
		log_warn("--max-cgroups is ignored through the agent, which has its own");
	if (fwrite(r.body, 1, r.len, stdout) == r.len && !fflush(stdout))
		*ret = 0;
	client_resp__free(&r);
	return 0;
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
	if (!o.standalone && o.socket) {
		err = stats__via_agent(&o, &ret);
		if (!err)
			return ret;
		log_info("no agent at '%s' (%s): sampling standalone", o.socket, strerror(-err));
	}
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
	stats__print(stdout, c, o.json, o.all);
	ret = fflush(stdout) ? 1 : 0;
out:
	collector__free(c);
	return ret;
}
