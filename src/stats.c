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
			if (count__parse(optarg, &o->cpu.max_cgroups)) {
				log_err("invalid --max-cgroups '%s': expected a positive count",
					optarg);
				return -EINVAL;
			}
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

/* Say what is missing and how to fix it, in one line. */
static int stats__preflight(char *root, size_t len)
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

/* 64-hex ids are shown as their first 12 characters, as docker and crictl do. */
static const char *short_id(const char *id, char *buf)
{
	if (strlen(id) != 64)
		return id;
	memcpy(buf, id, 12);
	buf[12] = '\0';
	return buf;
}

/* ts: the sample's wall-clock time, converted once so every object carries the same one. */
static void print_cpu_json(struct jw *w, const struct cg_usage *u, uint64_t ts)
{
	jw__key(w, "cpu");
	jw__begin_object(w);
	jw__kv_u64(w, "timestamp_ns", ts);
	jw__kv_u64(w, "usage_core_nano_seconds", u->cpu_ns);
	if (u->has_rate)
		jw__kv_u64(w, "usage_nano_cores", u->nano_cores);
	else
		jw__kv_null(w, "usage_nano_cores");
	jw__kv_u64(w, "switches", u->switches);
	jw__end_object(w);
}

/* What every cgroup object carries: its path, its id and its CPU. */
static void print_cgroup_json(struct jw *w, const struct cg_usage *u, uint64_t ts)
{
	jw__kv_string(w, "cgroup", u->node->path);
	jw__kv_u64(w, "cgroup_id", u->node->id);
	print_cpu_json(w, u, ts);
}

/* CRI ContainerStats.writable_layer, with the upper dir it measures; null and the reason. */
static void print_layer_json(struct jw *w, const struct cg_usage *u)
{
	jw__key(w, "writable_layer");
	if (!u->upperdir) {
		jw__null(w);
		jw__kv_string(w, "writable_layer_error", u->layer_why);
		return;
	}
	jw__begin_object(w);
	jw__kv_u64(w, "timestamp_ns", u->layer.timestamp_ns);
	jw__kv_string(w, "upperdir", u->upperdir);
	jw__kv_u64(w, "used_bytes", u->layer.used_bytes);
	jw__kv_u64(w, "inodes_used", u->layer.inodes_used);
	jw__end_object(w);
	jw__key(w, "image_layers");
	jw__begin_object(w);
	jw__kv_u64(w, "layers", u->nimage);
	jw__kv_u64(w, "used_bytes", u->image.used_bytes);
	jw__kv_u64(w, "inodes_used", u->image.inodes_used);
	jw__end_object(w);
}

static void print_traffic_json(struct jw *w, uint64_t rx_bytes, uint64_t rx_packets,
			       uint64_t tx_bytes, uint64_t tx_packets)
{
	jw__begin_object(w);
	jw__kv_u64(w, "rx_bytes", rx_bytes);
	jw__kv_u64(w, "rx_packets", rx_packets);
	jw__kv_u64(w, "tx_bytes", tx_bytes);
	jw__kv_u64(w, "tx_packets", tx_packets);
	jw__end_object(w);
}

/* CRI InterfaceStats, with packets, drops and tally's protocol breakdown (null without tc). */
static void print_interface_json(struct jw *w, const struct podnet_if *f)
{
	static const char *const proto[NET_IF_PROTOS] = {
	    [NET_IF_TCP] = "tcp",
	    [NET_IF_UDP] = "udp",
	    [NET_IF_ICMP] = "icmp",
	    [NET_IF_OTHER] = "other",
	};
	const struct net_if_counter *p = &f->proto;

	jw__begin_object(w);
	jw__kv_string(w, "name", f->name);
	if (!f->has_stats) {
		/* No host-side peer seen: nothing is known of it, and zero would be a lie. */
		jw__kv_null(w, "rx_bytes");
		jw__kv_null(w, "tx_bytes");
		jw__end_object(w);
		return;
	}
	jw__kv_u64(w, "rx_bytes", f->stats.rx_bytes);
	jw__kv_u64(w, "rx_packets", f->stats.rx_packets);
	jw__kv_u64(w, "rx_errors", f->stats.rx_errors);
	jw__kv_u64(w, "rx_dropped", f->stats.rx_dropped);
	jw__kv_u64(w, "tx_bytes", f->stats.tx_bytes);
	jw__kv_u64(w, "tx_packets", f->stats.tx_packets);
	jw__kv_u64(w, "tx_errors", f->stats.tx_errors);
	jw__kv_u64(w, "tx_dropped", f->stats.tx_dropped);
	jw__key(w, "protocols");
	if (!f->has_proto) {
		jw__null(w);
	} else {
		jw__begin_object(w);
		for (int i = 0; i < NET_IF_PROTOS; i++) {
			jw__key(w, proto[i]);
			print_traffic_json(w, p->bytes[PODNET_RX][i],
					   p->packets[PODNET_RX][i],
					   p->bytes[PODNET_TX][i],
					   p->packets[PODNET_TX][i]);
		}
		jw__end_object(w);
	}
	jw__end_object(w);
}

/*
 * "network": the cgroup's socket traffic (cgroup_skb), and with ifs the interfaces of its own
 * namespace (CRI NetworkUsage: default_interface and interfaces, from the pod's side).
 */
static void print_network_json(struct jw *w, const struct cg_usage *u, uint64_t ts, bool ifs)
{
	const struct podnet_ns *ns = u->netns;

	jw__key(w, "network");
	jw__begin_object(w);
	jw__kv_u64(w, "timestamp_ns", ts);
	jw__key(w, "sockets");
	if (u->has_net)
		print_traffic_json(w, u->net.rx_bytes, u->net.rx_packets, u->net.tx_bytes,
				   u->net.tx_packets);
	else
		jw__null(w);
	if (!u->has_net)
		jw__kv_string(w, "sockets_error", u->net_why);
	if (ifs) {
		jw__key(w, "host_network");
		jw__bool(w, u->host_network);
		jw__key(w, "default_interface");
		if (ns && ns->default_idx >= 0)
			print_interface_json(w, &ns->ifs[ns->default_idx]);
		else
			jw__null(w);
		jw__key(w, "interfaces");
		jw__begin_array(w);
		for (size_t i = 0; ns && i < ns->n; i++)
			print_interface_json(w, &ns->ifs[i]);
		jw__end_array(w);
		if (!ns && !u->host_network)
			jw__kv_string(w, "interfaces_error", u->netns_why);
	}
	jw__end_object(w);
}

static void print_json(const struct collector *c, const struct stats_opts *o)
{
	uint64_t ts = clock__to_realtime_ns(collector__cpu_sample(c)->ts_ns);
	size_t n = collector__count(c);
	struct cg_usage u;
	struct jw *w;

	w = jw__new(stdout, false);
	if (!w)
		return;
	jw__begin_object(w);
	jw__kv_u64(w, "timestamp_ns", ts);
	jw__key(w, "containers");
	jw__begin_array(w);
	for (size_t i = 0; i < n; i++) {
		collector__usage(c, i, &u);
		if (u.node->ident.kind != CG_CONTAINER)
			continue;
		jw__begin_object(w);
		jw__kv_string(w, "id", u.node->ident.id);
		jw__kv_string(w, "pod", u.node->ident.pod_uid[0] ? u.node->ident.pod_uid : NULL);
		jw__kv_string(w, "runtime", runtime__name(u.node->ident.runtime));
		print_cgroup_json(w, &u, ts);
		print_layer_json(w, &u);
		/* A pod's containers share its namespace: the pod carries the interfaces. */
		print_network_json(w, &u, ts, !u.node->ident.pod_uid[0]);
		jw__end_object(w);
	}
	jw__end_array(w);
	jw__key(w, "pods");
	jw__begin_array(w);
	for (size_t i = 0; i < n; i++) {
		collector__usage(c, i, &u);
		if (u.node->ident.kind != CG_POD)
			continue;
		jw__begin_object(w);
		jw__kv_string(w, "uid", u.node->ident.pod_uid);
		print_cgroup_json(w, &u, ts);
		print_network_json(w, &u, ts, true);
		jw__key(w, "containers");
		jw__begin_array(w);
		for (size_t j = 0; j < n; j++) {
			const struct cg_node *x = collector__node(c, j);

			if (x->ident.kind == CG_CONTAINER &&
			    !strcmp(x->ident.pod_uid, u.node->ident.pod_uid))
				jw__string(w, x->ident.id);
		}
		jw__end_array(w);
		jw__end_object(w);
	}
	jw__end_array(w);
	if (o->all) {
		jw__key(w, "cgroups");
		jw__begin_array(w);
		for (size_t i = 0; i < n; i++) {
			collector__usage(c, i, &u);
			if (u.node->ident.kind != CG_OTHER)
				continue;
			jw__begin_object(w);
			print_cgroup_json(w, &u, ts);
			jw__end_object(w);
		}
		jw__end_array(w);
	}
	jw__end_object(w);
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
	if (stats__preflight(root, sizeof(root)))
		return 1;
	c = collector__new(root, &o.cpu);
	if (!c) {
		err = -errno;
		if (err == -EPERM || err == -EACCES)
			log_err("failed to load BPF programs: %s: run tally as root (it needs "
				"CAP_BPF and CAP_PERFMON)",
				strerror(-err));
		else
			log_err("failed to load BPF programs: %s (needs a kernel with BTF and BPF "
				"tracing programs; run 'tally -v stats' for the verifier log)",
				strerror(-err));
		return 1;
	}
	log_debug("cgroup2 at '%s'; sched_switch via %s; %s reads; removal %s", root,
		  cpu__switch_hook(collector__cpu(c)),
		  cpu__batch_reads(collector__cpu(c)) ? "batch" : "per-key",
		  cpu__tracks_removal(collector__cpu(c)) ? "tracepoint" : "reconciled by walks");
	if (collector__net_error(c))
		log_warn("network counters are unavailable (%s), continuing without them",
			 collector__net_error(c));
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
