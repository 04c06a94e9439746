// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A real Prometheus server (Debian's prometheus) scrapes a real `tally agent`: the target must
 * be up with no scrape error, and what Prometheus stored must be what the kernel says (a
 * container's CPU between two reads of its cpu.stat) and what the agent served (the same
 * series, which promtool also accepts). Prometheus runs from a temp dir in /dev/shm with a
 * config written here, on a free loopback port; it is killed by pid and its dir removed in
 * .fini, and it dies with the test (PR_SET_PDEATHSIG) if the test process is killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent_helpers.h"
#include "helpers.h"

/* An on-demand agent (--period 0) shares a collection with requests this close to it. */
#define CACHE_NS     500000000ull
#define MARGIN_NS    100000000ull
#define NSEC_PER_SEC 1000000000ull

struct prometheus {
	pid_t pid;
	int port;
	char dir[64];
};

static struct prometheus prom;

static void prometheus_stop(struct prometheus *p)
{
	char cmd[128], out[256];

	if (p->pid > 0) {
		/* SIGTERM lets it close its TSDB; it gets 10 s before SIGKILL. */
		kill(p->pid, SIGTERM);
		for (int i = 0; i < 1000 && waitpid(p->pid, NULL, WNOHANG) != p->pid; i++) {
			if (i == 999) {
				kill(p->pid, SIGKILL);
				waitpid(p->pid, NULL, 0);
			}
			th_sleep_ms(10);
		}
		p->pid = 0;
	}
	if (p->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
		th_run(cmd, out, sizeof(out));
		p->dir[0] = '\0';
	}
}

static void fini(void)
{
	prometheus_stop(&prom);
	ah_cleanup();
	th_cleanup();
}

/* Generous for the agent's first collection (see the agent suite); the test itself waits less. */
TestSuite(scrape, .fini = fini, .timeout = 120);

/* Connect without asserting: false while nothing listens yet. */
static bool port_listens(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd, 0);
	ok = !connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return ok;
}

/* A loopback port nothing listens on now (the kernel's pick). */
static int free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0 && !bind(fd, (struct sockaddr *)&sin, sizeof(sin)) &&
		      !getsockname(fd, (struct sockaddr *)&sin, &len),
		  "free port: %s", strerror(errno));
	close(fd);
	return ntohs(sin.sin_port);
}

static void prometheus_log(const struct prometheus *p, char *buf, size_t len)
{
	char path[128];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/prometheus.log", p->dir);
	f = fopen(path, "r");
	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

/*
 * GET path from Prometheus: 200 and its body, or the assertion says what it answered. HTTP/1.0,
 * so that a long answer comes whole rather than in chunks.
 */
static void prom_get(const struct prometheus *p, const char *path, struct resp *r)
{
	int fd = http_connect(p->port);
	char *req;
	int len;

	len = asprintf(&req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	cr_assert_gt(len, 0);
	send_all(fd, req, len);
	free(req);
	http_read(fd, r);
	cr_assert_eq(r->status, 200, "GET %s: %s", path, r->raw);
}

/* Everything but RFC 3986's unreserved characters percent-encoded. */
static void urlencode(const char *s, char *out, size_t len)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = *s;

		cr_assert_lt(n + 4, len, "query too long");
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c))
			out[n++] = c;
		else
			n += snprintf(out + n, len - n, "%%%02X", c);
	}
	out[n] = '\0';
}

/* /api/v1/query?query=q, its JSON given to a python3 script; the script's output in out. */
static void prom_query(const struct prometheus *p, const char *q, const char *script, char *out,
		       size_t len)
{
	char path[2048], enc[1536];
	struct resp r;
	int rc;

	urlencode(q, enc, sizeof(enc));
	snprintf(path, sizeof(path), "/api/v1/query?query=%s", enc);
	prom_get(p, path, &r);
	rc = py(script, r.body, r.body_len, out, len);
	cr_assert_eq(rc, 0, "%s: python3: %s\n%s", q, out, r.body);
	resp_free(&r);
}

/* Start prometheus scraping 127.0.0.1:target every second; wait (bounded) until it is ready. */
static void prometheus_start(struct prometheus *p, int target)
{
	char path[128], cfg[128], data[128], listen[64], log[8192];
	FILE *f;

	*p = (struct prometheus){};
	snprintf(p->dir, sizeof(p->dir), "/dev/shm/tally-test-scrape-%d-XXXXXX", (int)getpid());
	cr_assert_not_null(mkdtemp(p->dir), "mkdtemp: %s", strerror(errno));
	snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", p->dir);
	f = fopen(cfg, "w");
	cr_assert_not_null(f);
	/* The timeout may not exceed the interval; one second is ample for a loopback scrape. */
	fprintf(f,
		"global:\n"
		"  scrape_interval: 1s\n"
		"  scrape_timeout: 1s\n"
		"scrape_configs:\n"
		"  - job_name: tally\n"
		"    static_configs:\n"
		"      - targets: ['127.0.0.1:%d']\n",
		target);
	cr_assert_eq(fclose(f), 0);
	snprintf(data, sizeof(data), "--storage.tsdb.path=%s/data", p->dir);
	snprintf(path, sizeof(path), "%s/prometheus.log", p->dir);
	p->port = free_port();
	snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", p->port);
	snprintf(cfg, sizeof(cfg), "--config.file=%s/prometheus.yml", p->dir);

	p->pid = fork();
	cr_assert_geq(p->pid, 0, "fork: %s", strerror(errno));
	if (p->pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || null < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || dup2(null, 0) < 0)
			_exit(127);
		execlp("prometheus", "prometheus", cfg, data, listen, "--log.level=warn",
		       "--storage.tsdb.retention.time=1h", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 2000; i++) {
		int st;

		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			prometheus_log(p, log, sizeof(log));
			cr_assert_fail("prometheus exited (status %d): %s", st, log);
		}
		if (port_listens(p->port)) {
			struct resp r;
			int fd = http_connect(p->port);

			http_send(fd, "GET", "/-/ready", NULL);
			http_read(fd, &r);
			if (r.status == 200) {
				resp_free(&r);
				return;
			}
			resp_free(&r);
		}
		th_sleep_ms(10);
	}
	prometheus_log(p, log, sizeof(log));
	cr_assert_fail("prometheus not ready in 20 s: %s", log);
}

/*
 * Wait (bounded) until Prometheus's one target is the agent, up, scraped with no error. The
 * target's last state ("up" when it is) in out. Prometheus lists it a moment after it is ready.
 */
static bool target_up(const struct prometheus *p, int agent_port, char *out, size_t len)
{
	char script[1024];

	snprintf(script, sizeof(script),
		 "import json,sys\n"
		 "d = json.load(sys.stdin)\n"
		 "assert d['status'] == 'success', d\n"
		 "t = d['data']['activeTargets']\n"
		 "assert len(t) <= 1, t\n"
		 "if not t:\n"
		 "    print('no target yet')\n"
		 "    sys.exit(0)\n"
		 "t = t[0]\n"
		 "assert t['scrapeUrl'] == 'http://127.0.0.1:%d/metrics', t\n"
		 "assert t['labels']['job'] == 'tally', t\n"
		 "print('up' if t['health'] == 'up' and t['lastError'] == '' else\n"
		 "      '%%s: %%r' %% (t['health'], t['lastError']))\n",
		 agent_port);
	for (int i = 0; i < 200; i++) {
		struct resp r;
		int rc;

		prom_get(p, "/api/v1/targets", &r);
		rc = py(script, r.body, r.body_len, out, len);
		cr_assert_eq(rc, 0, "python3: %s\n%s", out, r.body);
		resp_free(&r);
		if (!strcmp(out, "up\n"))
			return true;
		th_sleep_ms(100);
	}
	return false;
}

/* |usage - kernel| within 10 ms or 1%: the agent suite's bound. */
static void expect_cpu_within(uint64_t usage, uint64_t before, uint64_t after)
{
	uint64_t tol = after / 100 > 10000000ull ? after / 100 : 10000000ull;

	cr_expect(usage + tol >= before && usage <= after + tol,
		  "scraped %.6f s outside the kernel's %.6f..%.6f s (tolerance %.3f s)",
		  usage / 1e9, before / 1e9, after / 1e9, tol / 1e9);
}

/*
 * The container's CPU sample Prometheus stored last: its scrape timestamp and value, in ns
 * (the value parsed by python3 from Prometheus's decimal string); false if none yet.
 */
static bool last_cpu_sample(const struct prometheus *p, const char *id, uint64_t *ts,
			    uint64_t *value)
{
	char q[256], script[1024], out[4096];
	unsigned long long t = 0, v = 0;

	snprintf(q, sizeof(q), "container_cpu_usage_seconds_total{container_id=\"%s\"}[1m]", id);
	snprintf(script, sizeof(script),
		 "import json,sys\n"
		 "from decimal import Decimal\n"
		 "d = json.load(sys.stdin)\n"
		 "assert d['status'] == 'success', d\n"
		 "r = d['data']['result']\n"
		 "assert d['data']['resultType'] == 'matrix' and len(r) <= 1, r\n"
		 "if not r:\n"
		 "    print(0, 0)\n"
		 "else:\n"
		 "    m = r[0]['metric']\n"
		 "    assert m['container_id'] == '%s' and m['runtime'] == 'docker', m\n"
		 "    assert m['cpu'] == 'total' and m['job'] == 'tally', m\n"
		 "    t, v = r[0]['values'][-1]\n"
		 "    print(int(Decimal(str(t)) * 10**9), int(Decimal(v) * 10**9))\n",
		 id);
	prom_query(p, q, script, out, sizeof(out));
	cr_assert_eq(sscanf(out, "%llu %llu", &t, &v), 2, "%s", out);
	*ts = t;
	*value = v;
	return t != 0;
}

/*
 * The series of the container, as "name{label=value,...}" lines sorted, from the agent's
 * exposition (parsed here by python3's regex, not by Prometheus) or from Prometheus. An empty
 * label value is the same as no label to Prometheus (pod_uid="" outside pods): left out.
 */
static void series_of_body(const char *body, size_t len, const char *id, char *out, size_t olen)
{
	char script[1536];

	snprintf(script, sizeof(script),
		 "import re,sys\n"
		 "lab = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"')\n"
		 "s = set()\n"
		 "for line in sys.stdin.read().splitlines():\n"
		 "    if line.startswith('#') or not line:\n"
		 "        continue\n"
		 "    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})? ', line)\n"
		 "    assert m, line\n"
		 "    labels = {k: v for k, v in lab.findall(m.group(3) or '') if v}\n"
		 "    if labels.get('container_id') != '%s':\n"
		 "        continue\n"
		 "    s.add(m.group(1) + '{' + ','.join('%%s=%%s' %% kv for kv in "
		 "sorted(labels.items()))"
		 " + '}')\n"
		 "print('\\n'.join(sorted(s)))\n",
		 id);
	cr_assert_eq(py(script, body, len, out, olen), 0, "python3: %s", out);
}

static void series_of_prometheus(const struct prometheus *p, const char *id, char *out, size_t len)
{
	char q[256];

	/* Only series the last scrape had: older ones were marked stale and are not returned. */
	snprintf(q, sizeof(q), "{container_id=\"%s\"}", id);
	prom_query(
	    p, q,
	    "import json,sys\n"
	    "d = json.load(sys.stdin)\n"
	    "assert d['status'] == 'success', d\n"
	    "s = set()\n"
	    "for r in d['data']['result']:\n"
	    "    m = dict(r['metric'])\n"
	    "    assert m.pop('job') == 'tally' and m.pop('instance').startswith('127.0.0.1:'), m\n"
	    "    n = m.pop('__name__')\n"
	    "    s.add(n + '{' + ','.join('%s=%s' % kv for kv in sorted(m.items())) + '}')\n"
	    "print('\\n'.join(sorted(s)))\n",
	    out, len);
}

Test(scrape, prometheus_scrapes_agent_and_agrees_with_kernel)
{
	static char body_series[1 << 16], prom_series[1 << 16];
	uint64_t t_before, wake, before, after, ts = 0, value = 0;
	char id[65], out[4096], q[128];
	struct agent a;
	struct resp r;
	const char *cg;
	bool fresh = false;

	cg = make_container("scrape", id, 0);
	th_burner_start(cg, -1);
	/* On demand: each scrape collects (a second apart, past the cache window), so the value a
	 * scrape carries was collected at most CACHE_NS before the scrape's timestamp. */
	agent_start(&a, "--period 0");
	prometheus_start(&prom, a.port);
	cr_assert(target_up(&prom, a.port, out, sizeof(out)), "target never up: %s", out);

	snprintf(q, sizeof(q), "up{job=\"tally\",instance=\"127.0.0.1:%d\"}", a.port);
	prom_query(&prom, q,
		   "import json,sys\n"
		   "d = json.load(sys.stdin)\n"
		   "r = d['data']['result']\n"
		   "assert d['status'] == 'success' and len(r) == 1, d\n"
		   "print(r[0]['value'][1])\n",
		   out, sizeof(out));
	cr_expect_str_eq(out, "1\n", "up = %s", out);

	/*
	 * A scrape stamped after before + CACHE_NS (and a margin for Prometheus's millisecond
	 * stamps) carries a collection made after before. To keep the window short, read before
	 * just ahead of such a scrape: Prometheus keeps each target's scrapes a second apart.
	 */
	for (int i = 0; i < 100 && !last_cpu_sample(&prom, id, &ts, &value); i++)
		th_sleep_ms(100);
	cr_assert_gt(ts, 0, "Prometheus has no container_cpu_usage_seconds_total of %s", id);
	/* 50 ms early: a late wake-up would miss that scrape and widen the window by a second. */
	wake = ts + 2 * NSEC_PER_SEC - CACHE_NS - MARGIN_NS - 50000000ull;
	while (wake < now_ns(CLOCK_REALTIME))
		wake += NSEC_PER_SEC;
	th_sleep_ms((wake - now_ns(CLOCK_REALTIME)) / 1000000);
	before = th_cpustat_ns(cg);
	t_before = now_ns(CLOCK_REALTIME);
	for (int i = 0; i < 500 && !fresh; i++) {
		fresh =
		    last_cpu_sample(&prom, id, &ts, &value) && ts > t_before + CACHE_NS + MARGIN_NS;
		if (!fresh)
			th_sleep_ms(10);
	}
	after = th_cpustat_ns(cg);
	cr_assert(fresh, "no scrape of the container %.1f s after the cpu.stat read (last at %.3f)",
		  (now_ns(CLOCK_REALTIME) - t_before) / 1e9, ts / 1e9);
	cr_expect_gt(value, 0);
	expect_cpu_within(value, before, after);

	/* The series Prometheus has of the container are the ones the agent serves. */
	series_of_prometheus(&prom, id, prom_series, sizeof(prom_series));
	http_get(&a, "/metrics", NULL, &r);
	cr_assert_eq(r.status, 200, "%s", r.raw);
	th_expect_promtool_accepts(r.body, r.body_len);
	series_of_body(r.body, r.body_len, id, body_series, sizeof(body_series));
	resp_free(&r);
	cr_expect(strstr(body_series, "container_cpu_usage_seconds_total{") != NULL, "%s",
		  body_series);
	cr_expect_str_eq(prom_series, body_series,
			 "Prometheus has other series than the agent serves:\n%s\nvs\n%s",
			 prom_series, body_series);

	/* Still up: nothing in all those scrapes was refused. */
	cr_expect(target_up(&prom, a.port, out, sizeof(out)), "target went down: %s", out);
	prometheus_stop(&prom);
	cr_expect_eq(agent_stop(&a, SIGTERM, 60000), 0);
	agent_kill(&a);
}
