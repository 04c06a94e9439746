// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The Prometheus text exposition of the latest generation. Every series of a family must come
 * together after its HELP and TYPE lines, so the writer goes family by family over one array
 * of the containers' and pods' usage, taken once. A family's header is written with its first
 * series: a family with nothing to say (no network path, no writable layer) is left out.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tally/cpu.h"
#include "tally/net.h"
#include "cpu.skel.h"
#include "net.skel.h"
#include "prom.h"
#include "util.h"

/* The writer: the current family, whether its header is out, and the series being written. */
struct pw {
	FILE *f;
	const char *name, *type, *help;
	bool header;
	bool labels; /* the current series has a label: '{' is written */
};

static void pw_family(struct pw *w, const char *name, const char *type, const char *help)
{
	w->name = name;
	w->type = type;
	w->help = help;
	w->header = false;
}

/* A series of the current family; suffix: "_sum" and "_count" of a summary, else "". */
static void pw_series_suffix(struct pw *w, const char *suffix)
{
	if (!w->header) {
		fprintf(w->f, "# HELP %s %s\n# TYPE %s %s\n", w->name, w->help, w->name, w->type);
		w->header = true;
	}
	fputs_unlocked(w->name, w->f);
	fputs_unlocked(suffix, w->f);
	w->labels = false;
}

static void pw_series(struct pw *w)
{
	pw_series_suffix(w, "");
}

/*
 * A label value: '\\', '"' and newline escaped as the format says, everything else verbatim
 * except bytes that are not UTF-8, which become U+FFFD as in the JSON writer (cgroup and
 * directory names can hold any byte; Prometheus rejects a scrape with invalid UTF-8).
 */
/* The exposition format's escapes in label values: '\\', '"' and newline. */
static const char *label_escape(unsigned char c, char buf[UTF8_ESC_MAX])
{
	switch (c) {
	case '\\':
		return "\\\\";
	case '"':
		return "\\\"";
	case '\n':
		return "\\n";
	}
	return NULL;
}

static void put_label_value(FILE *f, const char *str)
{
	utf8__write_escaped(f, str, strlen(str), label_escape);
}

static void put_label(FILE *f, bool first, const char *key, const char *value)
{
	if (!first)
		putc_unlocked(',', f);
	fputs_unlocked(key, f);
	fputs_unlocked("=\"", f);
	put_label_value(f, value ? value : "");
	putc_unlocked('"', f);
}

static void pw_label(struct pw *w, const char *key, const char *value)
{
	putc_unlocked(w->labels ? ',' : '{', w->f);
	w->labels = true;
	put_label(w->f, true, key, value);
}

/* A label whose value is already escaped (len bytes). */
static void pw_label_escaped(struct pw *w, const char *key, const char *value, size_t len)
{
	putc_unlocked(w->labels ? ',' : '{', w->f);
	w->labels = true;
	fputs_unlocked(key, w->f);
	fputs_unlocked("=\"", w->f);
	fwrite_unlocked(value, 1, len, w->f);
	putc_unlocked('"', w->f);
}

static void pw_end(struct pw *w)
{
	if (w->labels)
		putc_unlocked('}', w->f);
	putc_unlocked(' ', w->f);
}

/*
 * v in decimal, zero-padded to digits. Not fprintf: a scrape writes a number on each of its
 * tens of thousands of lines, and parsing the format each time was a tenth of the scrape.
 */
static void put_u64(FILE *f, uint64_t v, int digits)
{
	char buf[24], *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v || buf + sizeof(buf) - p < digits);
	fwrite_unlocked(p, 1, (size_t)(buf + sizeof(buf) - p), f);
}

static void pw_u64(struct pw *w, uint64_t v)
{
	pw_end(w);
	put_u64(w->f, v, 1);
	putc_unlocked('\n', w->f);
}

static void pw_i64(struct pw *w, int64_t v)
{
	pw_end(w);
	fprintf(w->f, "%" PRId64 "\n", v);
}

/* Nanoseconds as seconds, exactly: integer arithmetic, no rounding through a double. */
static void pw_seconds(struct pw *w, uint64_t ns)
{
	pw_end(w);
	put_u64(w->f, ns / (uint64_t)NSEC_PER_SEC, 1);
	putc_unlocked('.', w->f);
	put_u64(w->f, ns % (uint64_t)NSEC_PER_SEC, 9);
	putc_unlocked('\n', w->f);
}

/* A container or pod, and its labels, escaped once for all of its series. */
struct row {
	struct cg_usage u;
	const char *labels; /* id="...",pod_uid="..." (no braces) */
	size_t len;
	const char *device; /* u.upperdir escaped, without quotes (with u.upperdir only) */
	size_t device_len;
};

/* cAdvisor's id, plus what the path names: container id, pod uid and runtime. */
static void row_labels(FILE *f, const struct cg_usage *u)
{
	const struct cg_ident *id = &u->node->ident;

	put_label(f, true, "id", u->node->path);
	if (id->kind == CG_CONTAINER) {
		put_label(f, false, "container_id", id->id);
		put_label(f, false, "pod_uid", id->pod_uid);
		put_label(f, false, "runtime", runtime__name(id->runtime));
	} else {
		put_label(f, false, "pod_uid", id->pod_uid);
	}
}

static void cg_labels(struct pw *w, const struct row *r)
{
	putc_unlocked(w->labels ? ',' : '{', w->f);
	w->labels = true;
	fwrite_unlocked(r->labels, 1, r->len, w->f);
}

/*
 * The containers and pods of the latest generation with their labels: *rows (n of them) and
 * *text, which the labels point into; the caller frees both. 0 or -ENOMEM.
 */
static int rows_new(struct collector *c, struct row **rows, size_t *n, char **text)
{
	size_t count = collector__count(c), k = 0, len = 0;
	struct row *r = calloc(count ? count : 1, sizeof(*r));
	size_t *off = calloc(count ? count : 1, 2 * sizeof(*off)); /* labels', device's */
	FILE *f = NULL;

	*rows = NULL;
	*n = 0;
	*text = NULL;
	if (r && off)
		f = open_memstream(text, &len);
	if (!f)
		goto fail;
	for (size_t i = 0; i < count; i++) {
		if (collector__node(c, i)->ident.kind == CG_OTHER)
			continue;
		collector__usage(c, i, &r[k].u);
		off[2 * k] = (size_t)ftello(f);
		row_labels(f, &r[k].u);
		r[k].len = (size_t)ftello(f) - off[2 * k];
		off[2 * k + 1] = (size_t)ftello(f);
		if (r[k].u.upperdir)
			put_label_value(f, r[k].u.upperdir);
		r[k].device_len = (size_t)ftello(f) - off[2 * k + 1];
		k++;
	}
	if (fclose(f))
		goto fail;
	for (size_t i = 0; i < k; i++) {
		r[i].labels = *text + off[2 * i];
		r[i].device = *text + off[2 * i + 1];
	}
	free(off);
	*rows = r;
	*n = k;
	return 0;
fail:
	free(r);
	free(off);
	free(*text);
	*text = NULL;
	return -ENOMEM;
}

/* One number per cgroup: false when the cgroup has none (then it has no series). */
struct cg_metric {
	const char *name, *type, *help;
	bool (*get)(const struct cg_usage *u, uint64_t *v);
	bool seconds;	/* v is in ns, written as seconds */
	bool cpu_total; /* cAdvisor's cpu="total" (usage not split per CPU) */
	bool device;	/* device="<upperdir>", as cAdvisor labels filesystem series */
};

static bool get_cpu(const struct cg_usage *u, uint64_t *v)
{
	*v = u->cpu_ns;
	return true;
}

static bool get_switches(const struct cg_usage *u, uint64_t *v)
{
	*v = u->switches;
	return true;
}

static bool get_sock_rx_bytes(const struct cg_usage *u, uint64_t *v)
{
	*v = u->net.rx_bytes;
	return u->has_net;
}

static bool get_sock_tx_bytes(const struct cg_usage *u, uint64_t *v)
{
	*v = u->net.tx_bytes;
	return u->has_net;
}

static bool get_sock_rx_packets(const struct cg_usage *u, uint64_t *v)
{
	*v = u->net.rx_packets;
	return u->has_net;
}

static bool get_sock_tx_packets(const struct cg_usage *u, uint64_t *v)
{
	*v = u->net.tx_packets;
	return u->has_net;
}

static bool get_layer_bytes(const struct cg_usage *u, uint64_t *v)
{
	*v = u->layer.used_bytes;
	return u->upperdir != NULL;
}

static bool get_layer_inodes(const struct cg_usage *u, uint64_t *v)
{
	*v = u->layer.inodes_used;
	return u->upperdir != NULL;
}

static bool get_layer_verified(const struct cg_usage *u, uint64_t *v)
{
	*v = u->layer_verified;
	return u->upperdir != NULL;
}

/* Only layers given by absolute paths are measured: with none, 0 would be a guess. */
static bool get_image_bytes(const struct cg_usage *u, uint64_t *v)
{
	*v = u->image.used_bytes;
	return u->upperdir && u->nimage;
}

static const struct cg_metric cg_metrics[] = {
    {.name = "container_cpu_usage_seconds_total",
     .type = "counter",
     .help = "Cumulative CPU time consumed by the cgroup and its descendants, in seconds.",
     .get = get_cpu,
     .seconds = true,
     .cpu_total = true},
    {.name = "tally_container_context_switches_total",
     .type = "counter",
     .help = "Context switches of the cgroup's tasks, descendants included, since tally started.",
     .get = get_switches},
    {.name = "tally_container_socket_receive_bytes_total",
     .type = "counter",
     .help = "L3 bytes received by the sockets of the cgroup and its descendants since tally "
	     "started.",
     .get = get_sock_rx_bytes},
    {.name = "tally_container_socket_transmit_bytes_total",
     .type = "counter",
     .help = "L3 bytes sent by the sockets of the cgroup and its descendants since tally started.",
     .get = get_sock_tx_bytes},
    {.name = "tally_container_socket_receive_packets_total",
     .type = "counter",
     .help = "Packets received by the sockets of the cgroup and its descendants since tally "
	     "started.",
     .get = get_sock_rx_packets},
    {.name = "tally_container_socket_transmit_packets_total",
     .type = "counter",
     .help = "Packets sent by the sockets of the cgroup and its descendants since tally started.",
     .get = get_sock_tx_packets},
    {.name = "container_fs_usage_bytes",
     .type = "gauge",
     .help = "Bytes used by the container's writable layer (du of its overlay upper directory).",
     .get = get_layer_bytes,
     .device = true},
    {.name = "tally_container_fs_inodes_used",
     .type = "gauge",
     .help = "Inodes used by the container's writable layer (du --inodes of its upper "
	     "directory).",
     .get = get_layer_inodes,
     .device = true},
    {.name = "tally_container_fs_verified",
     .type = "gauge",
     .help = "1 when the writable layer's numbers come from a walk kept current by fanotify; 0 "
	     "while a restarted agent serves its checkpoint and walks the tree again.",
     .get = get_layer_verified,
     .device = true},
    {.name = "tally_container_image_layers_bytes",
     .type = "gauge",
     .help = "Bytes used by the container's read-only image layers, summed (du of each).",
     .get = get_image_bytes},
};

/* A pod's interfaces, or a container's outside any pod (in a pod, the pod has them). */
static const struct podnet_ns *cg_ifs(const struct cg_usage *u)
{
	if (u->node->ident.kind == CG_CONTAINER && u->node->ident.pod_uid[0])
		return NULL;
	return u->netns;
}

static const struct {
	const char *name, *help;
	size_t off; /* in struct netif_stats */
} if_metrics[] = {
    {"container_network_receive_bytes_total", "Cumulative bytes received on the interface.",
     offsetof(struct netif_stats, rx_bytes)},
    {"container_network_transmit_bytes_total", "Cumulative bytes sent on the interface.",
     offsetof(struct netif_stats, tx_bytes)},
    {"container_network_receive_packets_total", "Cumulative packets received on the interface.",
     offsetof(struct netif_stats, rx_packets)},
    {"container_network_transmit_packets_total", "Cumulative packets sent on the interface.",
     offsetof(struct netif_stats, tx_packets)},
    {"container_network_receive_errors_total",
     "Cumulative errors encountered while receiving on the interface.",
     offsetof(struct netif_stats, rx_errors)},
    {"container_network_transmit_errors_total",
     "Cumulative errors encountered while sending on the interface.",
     offsetof(struct netif_stats, tx_errors)},
    {"container_network_receive_packets_dropped_total",
     "Cumulative packets dropped while receiving on the interface.",
     offsetof(struct netif_stats, rx_dropped)},
    {"container_network_transmit_packets_dropped_total",
     "Cumulative packets dropped while sending on the interface.",
     offsetof(struct netif_stats, tx_dropped)},
};

static const struct {
	const char *name, *help;
	int dir;
	bool bytes;
} proto_metrics[] = {
    {"tally_container_network_protocol_receive_bytes_total",
     "Bytes received on the interface by protocol (link layer included), since tally attached.",
     PODNET_RX, true},
    {"tally_container_network_protocol_transmit_bytes_total",
     "Bytes sent on the interface by protocol (link layer included), since tally attached.",
     PODNET_TX, true},
    {"tally_container_network_protocol_receive_packets_total",
     "Packets received on the interface by protocol, since tally attached.", PODNET_RX, false},
    {"tally_container_network_protocol_transmit_packets_total",
     "Packets sent on the interface by protocol, since tally attached.", PODNET_TX, false},
};

static const char *const proto_names[NET_IF_PROTOS] = {
    [NET_IF_TCP] = "tcp",
    [NET_IF_UDP] = "udp",
    [NET_IF_ICMP] = "icmp",
    [NET_IF_OTHER] = "other",
};

/*
 * The per-cgroup families cg_metrics[from, to); the interfaces' families too when to is the
 * end.
 */
static void write_cgroups(struct pw *w, const struct row *r, size_t n, size_t from, size_t to)
{
	for (size_t m = from; m < to; m++) {
		const struct cg_metric *cm = &cg_metrics[m];

		pw_family(w, cm->name, cm->type, cm->help);
		for (size_t i = 0; i < n; i++) {
			uint64_t v = 0;

			if (!cm->get(&r[i].u, &v))
				continue;
			pw_series(w);
			cg_labels(w, &r[i]);
			if (cm->cpu_total)
				pw_label(w, "cpu", "total");
			if (cm->device)
				pw_label_escaped(w, "device", r[i].device, r[i].device_len);
			if (cm->seconds)
				pw_seconds(w, v);
			else
				pw_u64(w, v);
		}
	}
	if (to < sizeof(cg_metrics) / sizeof(cg_metrics[0]))
		return;
	for (size_t m = 0; m < sizeof(if_metrics) / sizeof(if_metrics[0]); m++) {
		pw_family(w, if_metrics[m].name, "counter", if_metrics[m].help);
		for (size_t i = 0; i < n; i++) {
			const struct podnet_ns *ns = cg_ifs(&r[i].u);

			for (size_t k = 0; ns && k < ns->n; k++) {
				const struct podnet_if *f = &ns->ifs[k];
				uint64_t v;

				/* No host-side peer seen: zero would be a lie. */
				if (!f->has_stats)
					continue;
				memcpy(&v, (const char *)&f->stats + if_metrics[m].off, sizeof(v));
				pw_series(w);
				cg_labels(w, &r[i]);
				pw_label(w, "interface", f->name);
				pw_u64(w, v);
			}
		}
	}
	for (size_t m = 0; m < sizeof(proto_metrics) / sizeof(proto_metrics[0]); m++) {
		int dir = proto_metrics[m].dir;

		pw_family(w, proto_metrics[m].name, "counter", proto_metrics[m].help);
		for (size_t i = 0; i < n; i++) {
			const struct podnet_ns *ns = cg_ifs(&r[i].u);

			for (size_t k = 0; ns && k < ns->n; k++) {
				const struct podnet_if *f = &ns->ifs[k];

				if (!f->has_stats || !f->has_proto)
					continue;
				for (int p = 0; p < NET_IF_PROTOS; p++) {
					pw_series(w);
					cg_labels(w, &r[i]);
					pw_label(w, "interface", f->name);
					pw_label(w, "protocol", proto_names[p]);
					pw_u64(w, proto_metrics[m].bytes
						      ? f->proto.bytes[dir][p]
						      : f->proto.packets[dir][p]);
				}
			}
		}
	}
}

/* Run time and runs of one loaded BPF program (bpf_stats). */
struct prog_stat {
	const char *feature, *name;
	uint64_t run_ns, runs;
};

#define MAX_PROGS 32

static size_t progs_of(struct bpf_object *obj, const char *feature, struct prog_stat *out, size_t n)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, obj)
	{
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(p);

		/* Programs the probes left unloaded (raw_tp when tp_btf works) have no fd. */
		if (fd < 0 || n == MAX_PROGS || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		out[n++] = (struct prog_stat){
		    .feature = feature,
		    .name = bpf_program__name(p),
		    .run_ns = info.run_time_ns,
		    .runs = info.run_cnt,
		};
	}
	return n;
}

static void write_bpf(struct pw *w, struct collector *c)
{
	struct tally_net *net = collector__net(c);
	struct prog_stat progs[MAX_PROGS];
	const struct net_sample *ns = collector__net_sample(c);
	bool has_cpu = collector__count(c) > 0, has_net = ns != NULL;
	const struct cpu_sample *cs = collector__cpu_sample(c);
	struct tally_cpu *cpu = collector__cpu(c);
	struct podnet *pods = collector__podnet(c);
	size_t n;

	n = progs_of(cpu__skel(cpu)->obj, "cpu", progs, 0);
	if (net)
		n = progs_of(net__skel(net)->obj, "net", progs, n);
	pw_family(w, "tally_bpf_program_run_seconds_total", "counter",
		  "Time spent running the BPF program (kernel bpf_stats; 0 while they are off).");
	for (size_t i = 0; i < n; i++) {
		pw_series(w);
		pw_label(w, "feature", progs[i].feature);
		pw_label(w, "program", progs[i].name);
		pw_seconds(w, progs[i].run_ns);
	}
	pw_family(w, "tally_bpf_program_runs_total", "counter",
		  "Runs of the BPF program (kernel bpf_stats; 0 while they are off).");
	for (size_t i = 0; i < n; i++) {
		pw_series(w);
		pw_label(w, "feature", progs[i].feature);
		pw_label(w, "program", progs[i].name);
		pw_u64(w, progs[i].runs);
	}

	pw_family(w, "tally_bpf_map_entries", "gauge", "Entries in the BPF map.");
	if (has_cpu) {
		pw_series(w);
		pw_label(w, "map", "cg_cpu");
		pw_u64(w, cs->map_entries);
	}
	if (has_net) {
		pw_series(w);
		pw_label(w, "map", "cg_net");
		pw_u64(w, ns->map_entries);
	}
	if (net && pods) {
		pw_series(w);
		pw_label(w, "map", "if_net");
		pw_u64(w, podnet__attached(pods));
	}
	pw_family(w, "tally_bpf_map_max_entries", "gauge",
		  "Entries the BPF map holds at most: once full, updates of new keys are lost.");
	pw_series(w);
	pw_label(w, "map", "cg_cpu");
	pw_u64(w, cpu__max_cgroups(cpu));
	if (net) {
		pw_series(w);
		pw_label(w, "map", "cg_net");
		pw_u64(w, bpf_map__max_entries(net__skel(net)->maps.cg_net));
		pw_series(w);
		pw_label(w, "map", "if_net");
		pw_u64(w, bpf_map__max_entries(net__skel(net)->maps.if_net));
	}
	pw_family(w, "tally_bpf_dropped_updates_total", "counter",
		  "Counter updates lost because the BPF map was full.");
	if (has_cpu) {
		pw_series(w);
		pw_label(w, "map", "cg_cpu");
		pw_u64(w, cs->dropped_updates);
	}
	if (has_net) {
		pw_series(w);
		pw_label(w, "map", "cg_net");
		pw_u64(w, ns->dropped_updates);
	}
	pw_family(w, "tally_bpf_dropped_cpu_seconds_total", "counter",
		  "CPU time carried by the updates lost because the BPF map was full.");
	if (has_cpu) {
		pw_series(w);
		pw_label(w, "map", "cg_cpu");
		pw_seconds(w, cs->dropped_ns);
	}
	pw_family(w, "tally_bpf_dropped_bytes_total", "counter",
		  "Socket bytes carried by the updates lost because the BPF map was full.");
	if (has_net) {
		pw_series(w);
		pw_label(w, "map", "cg_net");
		pw_u64(w, ns->dropped_bytes);
	}
	if (net && pods) {
		int ifindex, err;

		pw_family(w, "tally_net_tc_attach_failures_total", "counter",
			  "Attaches of tc to a pod's host interface that failed (the device going "
			  "away aside); each is tried again at the next collection.");
		pw_series(w);
		pw_u64(w, podnet__attach_failures(pods, &ifindex, &err));
	}
}

static void write_disk(struct pw *w, struct disk *d)
{
	static const struct {
		const char *name, *type, *help;
		size_t off; /* in struct disk_stats */
	} m[] = {
	    {"tally_fanotify_events_total", "counter", "fanotify events read.",
	     offsetof(struct disk_stats, events)},
	    {"tally_disk_overflows_total", "counter",
	     "fanotify queue overflows (each makes every tree be walked again).",
	     offsetof(struct disk_stats, overflows)},
	    {"tally_disk_rescans_total", "counter", "Walks of a tree after a queue overflow.",
	     offsetof(struct disk_stats, rescans)},
	    {"tally_disk_reconciles_total", "counter", "Reconciliation walks of a tree.",
	     offsetof(struct disk_stats, reconciles)},
	    {"tally_disk_drift_found_total", "counter",
	     "Reconciliation walks that found the tree's index wrong.",
	     offsetof(struct disk_stats, drift_found)},
	    {"tally_disk_trees", "gauge", "Writable layers (directory trees) tracked.",
	     offsetof(struct disk_stats, trees)},
	    {"tally_disk_index_bytes", "gauge", "Memory held by the trees' indexes.",
	     offsetof(struct disk_stats, mem_bytes)},
	};
	struct disk_stats st;

	disk__stats(d, &st);
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)&st + m[i].off, sizeof(v));
		pw_family(w, m[i].name, m[i].type, m[i].help);
		pw_series(w);
		pw_u64(w, v);
	}
	/* Signed sums (walk minus index): they can go down, so gauges, not counters. */
	pw_family(w, "tally_disk_drift_bytes", "gauge",
		  "Sum over reconciliation walks of the bytes found minus the bytes indexed.");
	pw_series(w);
	pw_i64(w, st.drift_bytes);
	pw_family(w, "tally_disk_drift_inodes", "gauge",
		  "Sum over reconciliation walks of the inodes found minus the inodes indexed.");
	pw_series(w);
	pw_i64(w, st.drift_inodes);
}

static void write_agent(struct pw *w, const struct prom_agent *a)
{
	pw_family(w, "tally_collections_total", "counter", "Collections completed.");
	pw_series(w);
	pw_u64(w, a->collections);
	pw_family(w, "tally_collection_errors_total", "counter", "Collections that failed.");
	pw_series(w);
	pw_u64(w, a->collection_errors);
	pw_family(w, "tally_collection_duration_seconds", "summary",
		  "Wall time of the completed collections.");
	pw_series_suffix(w, "_sum");
	pw_seconds(w, a->collection_ns_sum);
	pw_series_suffix(w, "_count");
	pw_u64(w, a->collections);
	pw_family(w, "tally_collection_last_duration_seconds", "gauge",
		  "Wall time of the latest completed collection.");
	pw_series(w);
	pw_seconds(w, a->collection_ns_last);
	pw_family(w, "tally_scrape_duration_seconds", "summary",
		  "Time taken to serve /metrics, this scrape excluded.");
	pw_series_suffix(w, "_sum");
	pw_seconds(w, a->scrape_ns_sum);
	pw_series_suffix(w, "_count");
	pw_u64(w, a->scrapes);
	pw_family(w, "tally_http_requests_rejected_total", "counter",
		  "HTTP requests refused: answered with a 4xx by tally, or cut off by "
		  "libmicrohttpd after their request line (headers too large, malformed or "
		  "never finished).");
	pw_series(w);
	pw_u64(w, a->requests_rejected);
}

/*
 * The parts of a document: the first per-cgroup families, then the rest. At 1,000 containers
 * part 0 holds the CPU, context switch and two socket families (about 1.6 MB) and part 1 the
 * others and tally's own (about 2.3 MB): the agent writes part 0 on the thread that also took
 * the document and sends the answer.
 */
#define PROM_SPLIT 4

struct prom_doc {
	struct collector *c;
	const struct prom_agent *agent;
	struct row *rows;
	size_t n;
	char *labels;
};

struct prom_doc *prom__doc_new(struct collector *c, const struct prom_agent *agent)
{
	struct prom_doc *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->c = c;
	d->agent = agent;
	if (rows_new(c, &d->rows, &d->n, &d->labels)) {
		free(d);
		return NULL;
	}
	return d;
}

void prom__doc_free(struct prom_doc *d)
{
	if (!d)
		return;
	free(d->rows);
	free(d->labels);
	free(d);
}

int prom__doc_write(FILE *out, const struct prom_doc *d, int part)
{
	struct pw w = {.f = out};
	struct disk *disk = collector__disk(d->c);

	/* One lock for the whole text: stdio would take it again for every byte and line. */
	flockfile(out);
	if (part == 0) {
		write_cgroups(&w, d->rows, d->n, 0, PROM_SPLIT);
	} else {
		write_cgroups(&w, d->rows, d->n, PROM_SPLIT,
			      sizeof(cg_metrics) / sizeof(cg_metrics[0]));
		write_bpf(&w, d->c);
		if (disk)
			write_disk(&w, disk);
		if (d->agent)
			write_agent(&w, d->agent);
	}
	funlockfile(out);
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}

int prom__write(FILE *out, struct collector *c, const struct prom_agent *agent)
{
	struct prom_doc *d = prom__doc_new(c, agent);
	int err;

	if (!d)
		return -ENOMEM;
	err = prom__doc_write(out, d, 0);
	if (!err)
		err = prom__doc_write(out, d, 1);
	prom__doc_free(d);
	return err;
}

/*
 * A qvalue (RFC 9110, section 12.4.2): "0" or "1", optionally followed by '.' and up to three
 * digits. Sets *nonzero; false when s is not one.
 */
static bool qvalue(const char *s, size_t len, bool *nonzero)
{
	size_t i = 1;

	if (!len || (s[0] != '0' && s[0] != '1'))
		return false;
	*nonzero = s[0] == '1';
	if (len > 1) {
		if (s[1] != '.' || len > 5)
			return false;
		for (i = 2; i < len; i++) {
			if (s[i] < '0' || s[i] > '9' || (s[0] == '1' && s[i] != '0'))
				return false;
			*nonzero |= s[i] != '0';
		}
	}
	return true;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

bool prom__accepts_gzip(const char *accept_encoding)
{
	int gzip = -1, star = -1; /* -1: not listed; else whether its q is above 0 */
	const char *p = accept_encoding;

	if (!p)
		return false;
	while (*p) {
		const char *end = p + strcspn(p, ","), *tok, *param;
		size_t toklen;
		bool nonzero = true, valid = true;

		/* One element: coding *( OWS ";" OWS parameter ). */
		while (p < end && is_ows(*p))
			p++;
		tok = p;
		while (p < end && *p != ';' && !is_ows(*p))
			p++;
		toklen = (size_t)(p - tok);
		while (p < end) {
			const char *eq, *pend;

			while (p < end && (is_ows(*p) || *p == ';'))
				p++;
			param = p;
			pend = p;
			while (pend < end && *pend != ';')
				pend++;
			p = pend;
			while (pend > param && is_ows(pend[-1]))
				pend--;
			if (pend == param)
				continue;
			eq = memchr(param, '=', (size_t)(pend - param));
			if (eq && eq - param == 1 && (param[0] == 'q' || param[0] == 'Q'))
				valid &= qvalue(eq + 1, (size_t)(pend - eq - 1), &nonzero);
		}
		/* An element with a malformed weight is ignored, as if it were not there. */
		if (valid && toklen) {
			if ((toklen == 4 && !strncasecmp(tok, "gzip", 4)) ||
			    (toklen == 6 && !strncasecmp(tok, "x-gzip", 6)))
				gzip = gzip == 1 || nonzero;
			else if (toklen == 1 && tok[0] == '*')
				star = star == 1 || nonzero;
		}
		p = *end ? end + 1 : end;
	}
	return gzip >= 0 ? gzip == 1 : star == 1;
}
