// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The Prometheus exposition of a real collector: real cgroups named as runtimes name them, an
 * overlay writable layer, a pod with its own namespace and veth, real BPF. promtool (the
 * Prometheus project's own parser and linter) must accept every byte of it, and the numbers
 * read back must be the collector's and the kernel's. Hostile cgroup and directory names must
 * come out escaped and as valid UTF-8. (The gzip of a body: test_body.c.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "collect.h"
#include "disk_helpers.h"
#include "helpers.h"
#include "net_helpers.h"
#include "prom.h"

static struct collector *coll;

static void fini(void)
{
	collector__free(coll); /* detaches tc before the veths go */
	coll = NULL;
	th_cleanup();
	dh_cleanup();
	nh_cleanup();
}

TestSuite(prom, .fini = fini, .timeout = 90);

/* prom__write into a malloc'd, NUL-terminated buffer. */
static char *exposition(struct collector *c, const struct prom_agent *a, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	int err;

	cr_assert_not_null(f);
	err = prom__write(f, c, a);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(err, 0, "prom__write: %s", strerror(-err));
	if (len)
		*len = n;
	return buf;
}

/*
 * The value of the one series of family name (no suffix) whose line holds every needle (NULL
 * ended); NULL when there is none. Asserts there is at most one.
 */
static const char *series_value(const char *text, const char *name, const char *const *needles,
				char *val, size_t vlen)
{
	size_t nlen = strlen(name);
	const char *found = NULL;

	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		bool match = !strncmp(line, name, nlen) && (line[nlen] == '{' || line[nlen] == ' ');

		for (size_t i = 0; match && needles[i]; i++) {
			const char *h = memmem(line, len, needles[i], strlen(needles[i]));

			match = h != NULL;
		}
		if (match) {
			const char *sp = memrchr(line, ' ', len);

			cr_assert_null(found, "two series of %s match: %.*s", name, (int)len, line);
			cr_assert_not_null(sp);
			snprintf(val, vlen, "%.*s", (int)(line + len - sp - 1), sp + 1);
			found = val;
		}
		line += len + (end ? 1 : 0);
	}
	return found;
}

static uint64_t u64_of(const char *text, const char *name, const char *const *needles)
{
	char val[64], *end;
	unsigned long long v;

	cr_assert_not_null(series_value(text, name, needles, val, sizeof(val)),
			   "no %s series with %s", name, needles[0] ? needles[0] : "no label");
	v = strtoull(val, &end, 10);
	cr_assert(*val && !*end, "%s: not an integer: '%s'", name, val);
	return v;
}

/* "S.NNNNNNNNN" (what prom__write writes for seconds) to ns, exactly. */
static uint64_t ns_of(const char *text, const char *name, const char *const *needles)
{
	char val[64], *end;
	unsigned long long s, frac;

	cr_assert_not_null(series_value(text, name, needles, val, sizeof(val)),
			   "no %s series with %s", name, needles[0] ? needles[0] : "no label");
	s = strtoull(val, &end, 10);
	cr_assert(*end == '.' && strlen(end + 1) == 9, "%s: not S.NNNNNNNNN: '%s'", name, val);
	frac = strtoull(end + 1, &end, 10);
	cr_assert(!*end, "%s: '%s'", name, val);
	return s * 1000000000ull + frac;
}

static const char *label(const char *key, const char *escaped)
{
	return dh_path("%s=\"%s\"", key, escaped);
}

static struct collector *collector_start(void)
{
	coll = collector__new(th_cgroot(), NULL);
	cr_assert_not_null(coll, "collector__new: %s", strerror(errno));
	return coll;
}

static void collect(struct collector *c)
{
	int err = collector__collect(c);

	cr_assert_eq(err, 0, "collector__collect: %s", strerror(-err));
}

/*
 * A busy docker container, one whose root is an overlay, and a pod in its own namespace that
 * exchanges UDP with the host: promtool accepts everything, and each number read back is the
 * collector's, du's or the kernel's link counters.
 */
Test(prom, real_collector_passes_promtool_and_reads_back)
{
	static const char busy[] =
	    "4b1d0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	static const char layered[] =
	    "aaaa0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	static const char uid[] = "0f0e0d0c-0b0a-4998-8776-655443322110";
	static const char cid[] =
	    "cccc0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	const char *top = th_test_cgroup("prom") + strlen(th_cgroot()) + 1;
	const struct prom_agent agent = {
	    .collections = 7,
	    .collection_ns_sum = 3500000000ull,
	    .collection_ns_last = 1250000,
	    .collection_errors = 2,
	    .scrapes = 11,
	    .scrape_ns_sum = 42000001,
	    .requests_rejected = 3,
	};
	char rel[512], busy_id[512], layered_id[512], pod_id[512], cont_id[512];
	uint64_t before, after;
	struct nh_udp_client cli;
	struct dh_overlay o;
	struct nh_stats host;
	struct nh_link l;
	struct cg_usage u;
	const char *cg, *cg2, *cg3, *srv;
	struct collector *c;
	size_t len;
	char *text;
	int i;

	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, busy);
	cg = th_cgroup_create(rel);
	th_burner_start(cg, -1);

	dh_overlay_prepare(&o, "prom");
	dh_write(dh_path("%s/in-image", o.lower), 5000);
	dh_overlay_mount(&o);
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, layered);
	cg2 = th_cgroup_create(rel);
	dh_container_start(cg2, o.merged);

	nh_link_create(&l, "prom", "pm");
	snprintf(rel, sizeof(rel), "%s/kubepods/pod%s/%s", top, uid, cid);
	cg3 = th_cgroup_create(rel);
	snprintf(rel, sizeof(rel), "%s/server", top);
	srv = th_cgroup_create(rel);
	nh_sleeper_start(cg3, l.ns);

	before = th_cpustat_ns(cg);
	c = collector_start();
	/* Twice: a container's namespace is settled once seen the same twice, tc then counts. */
	collect(c);
	th_sleep_ms(200);
	collect(c);
	cli = (struct nh_udp_client){.cg = cg3, .count = 50, .size = 700, .ack = 60};
	nh_udp_exchange(&l, srv, &cli, 1);
	collect(c);
	after = th_cpustat_ns(cg);
	nh_stats_read(l.host, &host);

	text = exposition(c, &agent, &len);
	th_expect_promtool_accepts(text, len);

	snprintf(busy_id, sizeof(busy_id), "id=\"/%s/docker-%s.scope\"", top, busy);
	snprintf(layered_id, sizeof(layered_id), "id=\"/%s/docker-%s.scope\"", top, layered);
	snprintf(pod_id, sizeof(pod_id), "id=\"/%s/kubepods/pod%s\"", top, uid);
	snprintf(cont_id, sizeof(cont_id), "id=\"/%s/kubepods/pod%s/%s\"", top, uid, cid);

	/* CPU: exactly the collector's number, and that is the kernel's. */
	i = collector__find(c, th_cgroup_id(cg));
	cr_assert_geq(i, 0);
	collector__usage(c, i, &u);
	{
		const char *cpu = label("cpu", "total"), *cid_l = label("container_id", busy),
			   *rt = label("runtime", "docker"), *no_pod = label("pod_uid", "");
		/* n + 1 for the families without cAdvisor's cpu="total" */
		const char *const n[] = {cpu, busy_id, cid_l, rt, no_pod, NULL};
		uint64_t ns = ns_of(text, "container_cpu_usage_seconds_total", n);

		cr_expect_eq(ns, u.cpu_ns, "exposed %llu ns, collector %llu ns",
			     (unsigned long long)ns, (unsigned long long)u.cpu_ns);
		cr_expect(ns >= before && ns <= after + 10000000ull,
			  "%.3f s outside the kernel's %.3f..%.3f s", ns / 1e9, before / 1e9,
			  after / 1e9);
		cr_expect_eq(u64_of(text, "tally_container_context_switches_total", n + 1),
			     u.switches);
	}

	/* The writable layer: du's numbers, labelled with the upper dir as the device. */
	{
		const char *const n[] = {layered_id, label("device", o.upper), NULL};
		const char *const image[] = {layered_id, NULL};
		const char *const none[] = {busy_id, NULL};
		char val[64];

		cr_expect_eq(u64_of(text, "container_fs_usage_bytes", n), dh_du_bytes(o.upper));
		cr_expect_eq(u64_of(text, "tally_container_fs_inodes_used", n),
			     dh_du_inodes(o.upper));
		cr_expect_eq(u64_of(text, "tally_container_image_layers_bytes", image),
			     dh_du_bytes(o.lower));
		cr_expect_null(
		    series_value(text, "container_fs_usage_bytes", none, val, sizeof(val)),
		    "a container whose root is no overlay has no writable layer series");
	}

	/* The pod's interface, from the pod's side: what the host end sent, the pod received. */
	{
		const char *const n[] = {pod_id, label("pod_uid", uid), label("interface", l.peer),
					 NULL};
		const char *const in_pod[] = {cont_id, NULL};
		const char *const udp[] = {pod_id, label("interface", l.peer),
					   label("protocol", "udp"), NULL};
		char val[64];

		cr_expect_eq(u64_of(text, "container_network_receive_bytes_total", n),
			     host.tx_bytes);
		cr_expect_eq(u64_of(text, "container_network_transmit_bytes_total", n),
			     host.rx_bytes);
		cr_expect_eq(u64_of(text, "container_network_receive_packets_total", n),
			     host.tx_packets);
		cr_expect_eq(u64_of(text, "container_network_transmit_packets_total", n),
			     host.rx_packets);
		cr_expect_eq(u64_of(text, "container_network_receive_errors_total", n), 0);
		cr_expect_eq(u64_of(text, "container_network_transmit_packets_dropped_total", n),
			     0);
		cr_expect_eq(
		    u64_of(text, "tally_container_network_protocol_transmit_packets_total", udp),
		    50);
		cr_expect_eq(
		    u64_of(text, "tally_container_network_protocol_receive_packets_total", udp),
		    50);
		/* The pod's container shares the pod's namespace: the pod carries the interface. */
		cr_expect_null(series_value(text, "container_network_receive_bytes_total", in_pod,
					    val, sizeof(val)));
	}

	/* The pod's container's sockets: its datagrams, L3 bytes (20 IP + 8 UDP). */
	{
		const char *const n[] = {cont_id, label("container_id", cid), label("pod_uid", uid),
					 label("runtime", "kubernetes"), NULL};

		cr_expect_eq(u64_of(text, "tally_container_socket_transmit_packets_total", n), 50);
		cr_expect_eq(u64_of(text, "tally_container_socket_transmit_bytes_total", n),
			     50 * (700 + 28));
		cr_expect_eq(u64_of(text, "tally_container_socket_receive_packets_total", n), 50);
		cr_expect_eq(u64_of(text, "tally_container_socket_receive_bytes_total", n),
			     50 * (60 + 28));
	}

	/* tally itself. */
	{
		const char *const cpu_map[] = {label("map", "cg_cpu"), NULL};
		const char *const net_map[] = {label("map", "cg_net"), NULL};
		const char *const none[] = {NULL};
		char val[64];

		cr_expect_eq(u64_of(text, "tally_bpf_map_entries", cpu_map),
			     collector__cpu_sample(c)->map_entries);
		cr_expect_gt(u64_of(text, "tally_bpf_map_entries", net_map), 0);
		cr_expect_eq(u64_of(text, "tally_bpf_map_max_entries", cpu_map),
			     cpu__max_cgroups(collector__cpu(c)));
		cr_expect_eq(u64_of(text, "tally_bpf_dropped_updates_total", cpu_map), 0);
		cr_expect_not_null(strstr(text, "tally_bpf_program_runs_total{feature=\"cpu\","
						"program=\"handle_sched_switch"));
		cr_expect_not_null(strstr(text, "tally_bpf_program_runs_total{feature=\"net\","
						"program=\"handle_cgroup_egress\"}"));
		cr_expect_not_null(
		    series_value(text, "tally_fanotify_events_total", none, val, sizeof(val)));
		/*
		 * This test's container, and any other of the node's with an overlay root; one
		 * removed since the last collection is still listed, its tree already gone.
		 */
		size_t trees = 0;

		for (size_t i = 0; i < collector__count(c); i++) {
			struct cg_usage u;

			collector__usage(c, i, &u);
			trees += u.upperdir != NULL;
		}
		cr_expect_geq(u64_of(text, "tally_disk_trees", none), 1);
		cr_expect_leq(u64_of(text, "tally_disk_trees", none), trees);
		cr_expect_eq(u64_of(text, "tally_collections_total", none), 7);
		cr_expect_eq(u64_of(text, "tally_collection_errors_total", none), 2);
		cr_expect_eq(ns_of(text, "tally_collection_duration_seconds_sum", none),
			     3500000000ull);
		cr_expect_eq(u64_of(text, "tally_collection_duration_seconds_count", none), 7);
		cr_expect_eq(ns_of(text, "tally_collection_last_duration_seconds", none), 1250000);
		cr_expect_eq(ns_of(text, "tally_scrape_duration_seconds_sum", none), 42000001);
		cr_expect_eq(u64_of(text, "tally_scrape_duration_seconds_count", none), 11);
		cr_expect_eq(u64_of(text, "tally_http_requests_rejected_total", none), 3);
	}
	cr_expect_null(strstr(text, "# TYPE container_cpu_usage_seconds_total counter\n# "),
		       "a family's header comes with its series");
	free(text);

	/* Without an agent its series are left out, and the rest still passes. */
	text = exposition(c, NULL, &len);
	th_expect_promtool_accepts(text, len);
	cr_expect_null(strstr(text, "tally_collections_total"));
	cr_expect_null(strstr(text, "tally_scrape_duration_seconds"));
	free(text);
}

/*
 * A cgroup name and an upper directory holding a quote, a backslash, a tab and bytes that are
 * not UTF-8 (the kernel refuses a newline in a cgroup name, not in a directory's): promtool
 * accepts the output, and each label reads back escaped, with one U+FFFD per maximal subpart.
 */
Test(prom, hostile_names_are_escaped)
{
	static const char id[] = "badd0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef0123456789ab";
	/* \xc3 then '(' is a truncated sequence; \xed\xa0\x80 is a surrogate: three bytes bad. */
	static const char cg_raw[] = "q\"b\\s\xff\xc3(\xed\xa0\x80\tz";
	static const char cg_esc[] = "q\\\"b\\\\s\xef\xbf\xbd\xef\xbf\xbd("
				     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\tz";
	static const char dir_raw[] = "n\nq\"\xfe";
	static const char dir_esc[] = "n\\nq\\\"\xef\xbf\xbd";
	const char *top = th_test_cgroup("hostile") + strlen(th_cgroot()) + 1;
	char rel[512], id_label[1024], dev_label[PATH_MAX * 2], val[64];
	struct dh_overlay o;
	struct collector *c;
	const char *cg, *at;
	size_t len;
	char *text;

	snprintf(rel, sizeof(rel), "%s/%s/docker-%s.scope", top, cg_raw, id);
	cg = th_cgroup_create(rel);
	dh_overlay_prepare(&o, dir_raw);
	dh_overlay_mount(&o);
	dh_container_start(cg, o.merged);

	c = collector_start();
	collect(c);
	collect(c);
	text = exposition(c, NULL, &len);
	th_expect_promtool_accepts(text, len);

	snprintf(id_label, sizeof(id_label), "{id=\"/%s/%s/docker-%s.scope\",container_id=\"%s\"",
		 top, cg_esc, id, id);
	at = strstr(o.upper, dir_raw);
	cr_assert_not_null(at);
	snprintf(dev_label, sizeof(dev_label), "device=\"%.*s%s%s\"}", (int)(at - o.upper), o.upper,
		 dir_esc, at + strlen(dir_raw));
	{
		const char *const n[] = {id_label, NULL};
		const char *const dev[] = {id_label, dev_label, NULL};

		cr_expect_not_null(
		    series_value(text, "container_cpu_usage_seconds_total", n, val, sizeof(val)),
		    "no series with %s in:\n%s", id_label, text);
		cr_expect_eq(u64_of(text, "container_fs_usage_bytes", dev), dh_du_bytes(o.upper));
	}
	free(text);
}

Test(prom, accepts_gzip)
{
	static const struct {
		const char *header;
		bool gzip;
	} cases[] = {
	    {"gzip", true},
	    {"GZip", true},
	    {"x-gzip", true}, /* RFC 9110: the same as gzip */
	    {"deflate, gzip;q=1.0", true},
	    {"gzip;q=0", false},
	    {"gzip; q=0.000", false},
	    {"gzip;Q=0.001", true},
	    {"gzip ; q=0.5 ", true},
	    {"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
	    {"*", true},
	    {"*;q=0", false},
	    {"gzip;q=0, *", false}, /* gzip listed: its own weight decides */
	    {"*;q=0, gzip", true},
	    {"identity", false},
	    {"identity;q=1, *;q=0", false},
	    {"deflate, br", false},
	    {"gzipx, xgzip", false},
	    {"gzip;q=2", false}, /* a malformed weight: the element is ignored */
	    {"gzip;q=0.5x", false},
	    {"gzip;q=1.001", false},
	    {"gzip;level=9", true}, /* other parameters do not matter */
	    {",, gzip ,", true},
	    {"", false},
	    {NULL, false}, /* no header: send it as it is */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(prom__accepts_gzip(cases[i].header), cases[i].gzip,
			     "'%s': expected %s", cases[i].header ? cases[i].header : "(null)",
			     cases[i].gzip ? "gzip" : "identity");
}
