// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The stats document: every container and pod of the latest generation as JSON, with CRI
 * field names. One writer for `tally stats --json` and the agent's API.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tally/net.h"
#include "report.h"
#include "util.h"

/* ts: the sample's wall-clock time, converted once so every object carries the same one. */
static void cpu_json(struct jw *w, const struct cg_usage *u, uint64_t ts)
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
static void cgroup_json(struct jw *w, const struct cg_usage *u, uint64_t ts)
{
	jw__kv_string(w, "cgroup", u->node->path);
	jw__kv_u64(w, "cgroup_id", u->node->id);
	cpu_json(w, u, ts);
}

/* CRI ContainerStats.writable_layer, with the upper dir it measures; null and the reason. */
static void layer_json(struct jw *w, const struct cg_usage *u)
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
	/* false: a checkpoint's numbers, served while the tree is walked again after a restart */
	jw__key(w, "verified");
	jw__bool(w, u->layer_verified);
	jw__end_object(w);
	jw__key(w, "image_layers");
	jw__begin_object(w);
	jw__kv_u64(w, "layers", u->nimage);
	jw__kv_u64(w, "used_bytes", u->image.used_bytes);
	jw__kv_u64(w, "inodes_used", u->image.inodes_used);
	jw__end_object(w);
}

static void traffic_json(struct jw *w, uint64_t rx_bytes, uint64_t rx_packets, uint64_t tx_bytes,
			 uint64_t tx_packets)
{
	jw__begin_object(w);
	jw__kv_u64(w, "rx_bytes", rx_bytes);
	jw__kv_u64(w, "rx_packets", rx_packets);
	jw__kv_u64(w, "tx_bytes", tx_bytes);
	jw__kv_u64(w, "tx_packets", tx_packets);
	jw__end_object(w);
}

/* CRI InterfaceStats, with packets, drops and tally's protocol breakdown (null without tc). */
static void interface_json(struct jw *w, const struct podnet_if *f)
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
			traffic_json(w, p->bytes[PODNET_RX][i], p->packets[PODNET_RX][i],
				     p->bytes[PODNET_TX][i], p->packets[PODNET_TX][i]);
		}
		jw__end_object(w);
	}
	jw__end_object(w);
}

/*
 * "network": the cgroup's socket traffic (cgroup_skb), and with ifs the interfaces of its own
 * namespace (CRI NetworkUsage: default_interface and interfaces, from the pod's side).
 */
static void network_json(struct jw *w, const struct cg_usage *u, uint64_t ts, bool ifs)
{
	const struct podnet_ns *ns = u->netns;

	jw__key(w, "network");
	jw__begin_object(w);
	jw__kv_u64(w, "timestamp_ns", ts);
	jw__key(w, "sockets");
	if (u->has_net)
		traffic_json(w, u->net.rx_bytes, u->net.rx_packets, u->net.tx_bytes,
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
			interface_json(w, &ns->ifs[ns->default_idx]);
		else
			jw__null(w);
		jw__key(w, "interfaces");
		jw__begin_array(w);
		for (size_t i = 0; ns && i < ns->n; i++)
			interface_json(w, &ns->ifs[i]);
		jw__end_array(w);
		if (!ns && !u->host_network)
			jw__kv_string(w, "interfaces_error", u->netns_why);
	}
	jw__end_object(w);
}

/*
 * The latest generation's wall-clock time, converted once per generation: a conversion reads
 * both clocks anew, so two documents of one collection would otherwise differ by a few ns.
 */
static uint64_t report__ts(const struct collector *c)
{
	static _Thread_local struct {
		bool valid;
		uint64_t mono_ns, real_ns;
	} last;
	uint64_t mono_ns = collector__cpu_sample(c)->ts_ns;

	if (!last.valid || last.mono_ns != mono_ns) {
		last.mono_ns = mono_ns;
		last.real_ns = clock__to_realtime_ns(mono_ns);
		last.valid = true;
	}
	return last.real_ns;
}

/* One container object (CRI ContainerStats, with tally's additions). */
static void container_json(struct jw *w, const struct cg_usage *u, uint64_t ts)
{
	jw__begin_object(w);
	jw__kv_string(w, "id", u->node->ident.id);
	jw__kv_string(w, "pod", u->node->ident.pod_uid[0] ? u->node->ident.pod_uid : NULL);
	jw__kv_string(w, "runtime", runtime__name(u->node->ident.runtime));
	cgroup_json(w, u, ts);
	layer_json(w, u);
	/* A pod's containers share its namespace: the pod carries the interfaces. */
	network_json(w, u, ts, !u->node->ident.pod_uid[0]);
	jw__end_object(w);
}

struct pod_member {
	const char *uid; /* the container's node's, owned by the collector */
	size_t i;
};

static int pod_member_cmp(const void *a, const void *b)
{
	const struct pod_member *x = a, *y = b;
	int r = strcmp(x->uid, y->uid);

	return r ? r : (x->i > y->i) - (x->i < y->i);
}

void pod_members__init(struct pod_members *m, const struct collector *c)
{
	size_t n = collector__count(c);

	*m = (struct pod_members){.c = c};
	for (size_t i = 0; i < n; i++) {
		const struct cg_ident *id = &collector__node(c, i)->ident;

		if (id->kind != CG_CONTAINER || !id->pod_uid[0])
			continue;
		if (!m->v) {
			m->v = malloc(n * sizeof(*m->v));
			if (!m->v)
				return; /* lookups scan */
		}
		m->v[m->n++] = (struct pod_member){.uid = id->pod_uid, .i = i};
	}
	if (m->n)
		qsort(m->v, m->n, sizeof(*m->v), pod_member_cmp);
}

void pod_members__free(struct pod_members *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

bool pod_members__next(const struct pod_members *m, const char *uid, size_t *pos, size_t *i)
{
	size_t lo = 0, hi = m->n, n;

	if (!m->v) {
		/* No grouping: the pass over every cgroup; *pos is the next index to look at. */
		for (n = collector__count(m->c); *pos < n; (*pos)++) {
			const struct cg_ident *id = &collector__node(m->c, *pos)->ident;

			if (id->kind == CG_CONTAINER && id->pod_uid[0] &&
			    !strcmp(id->pod_uid, uid)) {
				*i = (*pos)++;
				return true;
			}
		}
		return false;
	}
	/* *pos: 0, or 1 + the position in v of the next candidate. */
	if (*pos) {
		lo = *pos - 1;
	} else {
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (strcmp(m->v[mid].uid, uid) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	if (lo >= m->n || strcmp(m->v[lo].uid, uid)) {
		*pos = m->n + 1;
		return false;
	}
	*i = m->v[lo].i;
	*pos = lo + 2;
	return true;
}

/* One pod object (CRI PodSandboxStats, with tally's additions). */
static void pod_json(struct jw *w, const struct pod_members *pm, const struct cg_usage *u,
		     uint64_t ts)
{
	size_t pos = 0, j;

	jw__begin_object(w);
	jw__kv_string(w, "uid", u->node->ident.pod_uid);
	cgroup_json(w, u, ts);
	network_json(w, u, ts, true);
	jw__key(w, "containers");
	jw__begin_array(w);
	while (pod_members__next(pm, u->node->ident.pod_uid, &pos, &j))
		jw__string(w, collector__node(pm->c, j)->ident.id);
	jw__end_array(w);
	jw__end_object(w);
}

/* An array of every cgroup of one kind; only those are looked at (collector__usage). */
static void kind_json(struct jw *w, const struct collector *c, enum cg_kind kind)
{
	uint64_t ts = report__ts(c);
	size_t n = collector__count(c);
	struct pod_members pm = {};
	struct cg_usage u;

	if (kind == CG_POD)
		pod_members__init(&pm, c);
	jw__begin_array(w);
	for (size_t i = 0; i < n; i++) {
		if (collector__node(c, i)->ident.kind != kind)
			continue;
		collector__usage(c, i, &u);
		if (kind == CG_CONTAINER) {
			container_json(w, &u, ts);
		} else if (kind == CG_POD) {
			pod_json(w, &pm, &u, ts);
		} else {
			jw__begin_object(w);
			cgroup_json(w, &u, ts);
			jw__end_object(w);
		}
	}
	jw__end_array(w);
	pod_members__free(&pm);
}

void report__containers(struct jw *w, const struct collector *c)
{
	kind_json(w, c, CG_CONTAINER);
}

void report__pods(struct jw *w, const struct collector *c)
{
	kind_json(w, c, CG_POD);
}

int report__container(struct jw *w, const struct collector *c, const char *id)
{
	size_t n = collector__count(c);
	struct cg_usage u;

	for (size_t i = 0; i < n; i++) {
		const struct cg_node *x = collector__node(c, i);

		if (x->ident.kind != CG_CONTAINER || strcmp(x->ident.id, id))
			continue;
		collector__usage(c, i, &u);
		container_json(w, &u, report__ts(c));
		return 0;
	}
	return -ENOENT;
}

void report__document(struct jw *w, const struct collector *c, bool others)
{
	jw__begin_object(w);
	jw__kv_u64(w, "timestamp_ns", report__ts(c));
	jw__key(w, "containers");
	report__containers(w, c);
	jw__key(w, "pods");
	report__pods(w, c);
	if (others) {
		jw__key(w, "cgroups");
		kind_json(w, c, CG_OTHER);
	}
	jw__end_object(w);
}
