// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tally agent: the node daemon. One event loop (epoll over a timerfd for the period, a signalfd,
 * the fanotify fd and libmicrohttpd's own epoll fd) owns the collector and serves its latest
 * generation over HTTP: Prometheus text on /metrics, the stats document's parts on /v1/.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/capability.h>

#include <microhttpd.h>

#include "tally/cpu.h"
#include "body.h"
#include "caps.h"
#include "checkpoint.h"
#include "client.h"
#include "collect.h"
#include "commands.h"
#include "json.h"
#include "log.h"
#include "net.h"
#include "pin.h"
#include "prom.h"
#include "report.h"
#include "util.h"

#define AGENT_DEFAULT_ADDR "127.0.0.1"
/* In the range Prometheus exporters use (node_exporter's is 9100). */
#define AGENT_DEFAULT_PORT 9123
/* --period 0: requests within this long of the last collection share it. */
#define AGENT_CACHE_NS (500 * 1000000ull)
/* A shorter period would spend the node's CPU on collecting. */
#define AGENT_MIN_PERIOD_NS (10 * 1000000ull)
/*
 * HTTP limits. A Prometheus server and a few API clients need a handful of connections; the
 * limit keeps a flood from taking file descriptors and memory. Each connection's request line
 * and headers must fit its memory pool (MHD answers 414 or 431 otherwise), and a client that
 * sends nothing for the timeout (a slowloris) is dropped.
 */
#define AGENT_MAX_CONNECTIONS 64
#define AGENT_CONN_MEMORY     (16 * 1024)
#define AGENT_CONN_TIMEOUT_S  10
#define AGENT_MAX_URL	      1024
#define AGENT_BACKLOG	      128
/* Where the writable-layer checkpoint lives (FHS: state that persists across reboots). */
#define AGENT_DEFAULT_STATE_DIR "/var/lib/tally"
/*
 * How often the checkpoint is rewritten (and at exit): a restart after kill -9 serves numbers
 * this old at worst, marked unverified, until its walks are done.
 */
#define AGENT_CHECKPOINT_NS (10 * NSEC_PER_SEC)
#define AGENT_MMAP_THRESHOLD (256 * 1024)

/*
 * What collecting needs once the programs are loaded and attached, found by dropping each in
 * turn (docs/ARCHITECTURE.md): CAP_SYS_ADMIN for setns into a new pod's network namespace and
 * the fanotify filesystem mark on a new upper dir's filesystem; CAP_SYS_PTRACE to open
 * /proc/<pid>/ns/net of containers' processes, which may hold capabilities tally no longer
 * has; CAP_DAC_READ_SEARCH for open_by_handle_at and upper dirs that other users own;
 * CAP_NET_ADMIN for classic tc on new veths (tcx links need only the program's fd). The
 * kernel takes CAP_SYS_ADMIN in place of CAP_BPF and CAP_PERFMON, so while it is kept they
 * add nothing (dropping them changed nothing here); they stay for an agent run with them but
 * without CAP_SYS_ADMIN, on a kernel that checks them for the BPF calls of a collection.
 */
#define AGENT_KEEP_CAPS                                                                            \
	(CAPS_BIT(CAP_BPF) | CAPS_BIT(CAP_PERFMON) | CAPS_BIT(CAP_NET_ADMIN) |                     \
	 CAPS_BIT(CAP_SYS_ADMIN) | CAPS_BIT(CAP_SYS_PTRACE) | CAPS_BIT(CAP_DAC_READ_SEARCH))

struct agent_opts {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t period_ns; /* 0: on demand */
	enum log_level level;
	bool level_set;
	bool verbose; /* 'tally -v agent': libbpf's load log too */
	struct cpu_opts cpu;
	char bpffs[PATH_MAX];	  /* pins (cpu.pin_root), "" with --bpffs none */
	char state_dir[PATH_MAX]; /* the checkpoint's, "" with --state-dir none */
	bool cleanup;
	const char *socket;   /* the local API's Unix socket; NULL: none */
	const char *log_file; /* NULL: stderr */
};

/* What the epoll event's data says. */
enum agent_fd { AGENT_TIMER, AGENT_SIGNAL, AGENT_HTTP, AGENT_DISK, AGENT_LOCAL };

/* Owns the event loop, the collector and the HTTP daemon (systemd-oomd's Manager). */
struct agent {
	const struct agent_opts *o;
	char root[PATH_MAX];
	char listen[INET6_ADDRSTRLEN + 16]; /* "addr:port", the bound port */
	struct collector *c;
	struct MHD_Daemon *http;
	struct MHD_Daemon *local; /* the same API on the Unix socket, root only */
	int sock_lock;		  /* flock'd PATH.lock of --socket, held for life; -1: none */
	dev_t sock_dev;		  /* the socket file this agent made, removed at exit */
	ino_t sock_ino;
	int epfd, timerfd, sigfd;
	bool ready;		    /* a collection has succeeded: there is something to serve */
	int last_err;		    /* of the last collection, 0 when it worked */
	uint64_t last_try_ns;	    /* CLOCK_MONOTONIC end of the last collection */
	uint64_t dropped_warned;    /* BPF map-full drops already warned about */
	uint64_t attach_warned;	    /* tc attach failures up to which the log has told */
	struct prom_agent counters; /* tally's own series on /metrics */
	struct body_pool bodies;    /* response buffers, kept for the next response */
	uint64_t checkpoint_ns;	    /* CLOCK_MONOTONIC of the last checkpoint written */
	bool stop;
};

/*
 * Per connection: request lines MHD parsed, and requests that reached the handler. A line
 * whose request never reached it was refused by MHD itself (headers too large or malformed)
 * or cut off by the client.
 */
struct agent_conn {
	unsigned lines;
	unsigned requests;
};

static void agent__usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tally agent [OPTIONS]\n\n"
	    "Run tally as the node's stats daemon: load the BPF programs once, collect every\n"
	    "cgroup every PERIOD (or on demand), and serve the latest collection over HTTP:\n\n"
	    "  GET /metrics             Prometheus text format (cAdvisor's metric names; gzip\n"
	    "                           when the client accepts it)\n"
	    "  GET /v1/containers       every container, as in 'tally stats --json'\n"
	    "  GET /v1/containers/ID    one container by its full id (404 when unknown)\n"
	    "  GET /v1/pods             every Kubernetes pod\n"
	    "  GET /healthz             200 'ok' once the first collection succeeded, else 503\n"
	    "  GET /v1/stats            what 'tally stats' prints, from the latest collection:\n"
	    "                           ?format=table (default) or json, &all=1 for --all\n\n"
	    "Options:\n"
	    "  -l, --listen ADDR:PORT   address to serve on: an IPv4 address or [IPv6]\n"
	    "                           address, and a port; 0 picks a free port, logged at\n"
	    "                           start (default %s:%u)\n"
	    "  -s, --socket PATH        also serve the API on a Unix socket, for 'tally stats'\n"
	    "                           (default %s; 'none': no socket). Mode 0600 and\n"
	    "                           root's peers only; its directory is created 0700 if\n"
	    "                           missing. A socket left by a killed agent is replaced;\n"
	    "                           one a live agent answers on is not (exit 1). Removed at\n"
	    "                           exit. PATH.lock, held while the agent runs, keeps a\n"
	    "                           second agent from starting on the same socket\n"
	    "  -p, --period DURATION    collect every DURATION: 1s (default), 500ms, 10s, ... (at\n"
	    "                           least 10ms); 0 collects on demand: a request collects\n"
	    "                           when the last collection is older than %llu ms, and\n"
	    "                           requests within that window share it\n"
	    "      --log-level LEVEL    error, warn, info (default) or debug (one line per\n"
	    "                           collection); one line per event\n"
	    "      --log-file PATH      append the log to PATH (created 0640) instead of\n"
	    "                           stderr; SIGHUP reopens it, as logrotate expects\n"
	    "      --max-cgroups N      cgroups the CPU and network counter maps hold\n"
	    "                           (default %u)\n"
	    "      --bpffs DIR          pin the BPF maps and links under DIR, a bpffs directory\n"
	    "                           (default %s; bpffs is mounted at /sys/fs/bpf if\n"
	    "                           missing): a restarted agent, even after kill -9, takes\n"
	    "                           them over and loses no count; 'none': nothing pinned,\n"
	    "                           everything detached at exit\n"
	    "      --state-dir DIR      keep the writable layers' checkpoint in DIR (default\n"
	    "                           %s; 'none': no checkpoint): after a restart,\n"
	    "                           layers are served from it, marked unverified, while\n"
	    "                           their trees are walked again in the background\n"
	    "      --cleanup            detach and unpin everything an agent pinned under\n"
	    "                           --bpffs, remove the checkpoint, then exit (to uninstall)\n"
	    "  -h, --help               print this help\n\n"
	    "Only GET and HEAD are served (others: 405), with no request body (413), URLs of up\n"
	    "to %u bytes (414), at most %u connections at once, each dropped after %u s of\n"
	    "silence. Requests that come during a collection wait for it and are served from it.\n"
	    "SIGTERM or SIGINT stops the agent (exit 0); its programs stay pinned and keep\n"
	    "counting for the next agent (with --bpffs none, everything is detached). A new\n"
	    "build or other --max-cgroups replaces the pinned programs, with no gap, and says\n"
	    "so; CPU totals continue from cpu.stat then, network counters start over. SIGHUP\n"
	    "reopens the --log-file (with stderr, there is nothing to reopen).\n\n"
	    "Needs root (CAP_BPF, CAP_PERFMON; CAP_NET_ADMIN and CAP_SYS_ADMIN for tc and for\n"
	    "looking into pod network namespaces), a kernel with BTF, and a cgroup v2 mount.\n"
	    "Once started, it keeps only CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN,\n"
	    "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (dropped from every set, the bounding set\n"
	    "included) and sets no_new_privs.\n",
	    AGENT_DEFAULT_ADDR, AGENT_DEFAULT_PORT, CLIENT_DEFAULT_SOCKET, AGENT_CACHE_NS / 1000000,
	    TALLY_CPU_DEFAULT_MAX_CGROUPS, PIN_DEFAULT_ROOT, AGENT_DEFAULT_STATE_DIR,
	    AGENT_MAX_URL, AGENT_MAX_CONNECTIONS,
	    AGENT_CONN_TIMEOUT_S);
}

/* "1.2.3.4:80" or "[::1]:80"; numeric addresses only, so no resolver runs. 0 or -EINVAL. */
static int listen__parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hs = s;
	size_t hlen;
	unsigned long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hs = s + 1;
		hlen = close - hs;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = colon - s;
	}
	if (!hlen || hlen >= sizeof(host) || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		return -EINVAL;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (*s == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*len = sizeof(*a);
	}
	return 0;
}

/* An absolute directory, or "none" (out ""). 0 or -EINVAL, logged. */
static int dir__parse(const char *opt, const char *arg, char *out, size_t len)
{
	bool none = !strcmp(arg, "none");

	if ((arg[0] != '/' && !none) || snprintf(out, len, "%s", none ? "" : arg) >= (int)len) {
		log_err("invalid %s '%s': expected an absolute path or 'none'", opt, arg);
		return -EINVAL;
	}
	return 0;
}

static int agent__parse(int argc, char **argv, struct agent_opts *o)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"period", required_argument, NULL, 'p'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"max-cgroups", required_argument, NULL, 'M'},
	    {"bpffs", required_argument, NULL, 'B'},
	    {"cleanup", no_argument, NULL, 'C'},
	    {"state-dir", required_argument, NULL, 'S'},
	    {"socket", required_argument, NULL, 's'},
	    {"log-file", required_argument, NULL, 'F'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	int opt;

	o->period_ns = NSEC_PER_SEC;
	snprintf(o->bpffs, sizeof(o->bpffs), "%s", PIN_DEFAULT_ROOT);
	snprintf(o->state_dir, sizeof(o->state_dir), "%s", AGENT_DEFAULT_STATE_DIR);
	o->socket = CLIENT_DEFAULT_SOCKET;
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)&o->addr;

		*sin = (struct sockaddr_in){.sin_family = AF_INET,
					    .sin_port = htons(AGENT_DEFAULT_PORT)};
		inet_pton(AF_INET, AGENT_DEFAULT_ADDR, &sin->sin_addr);
		o->addrlen = sizeof(*sin);
	}
	optind = 1;
	opterr = 0; /* one line of our own instead of getopt's */
	while ((opt = getopt_long(argc, argv, ":l:p:s:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (listen__parse(optarg, &o->addr, &o->addrlen)) {
				log_err("invalid --listen '%s': expected ADDR:PORT such as "
					"127.0.0.1:9123 or [::1]:9123",
					optarg);
				return -EINVAL;
			}
			break;
		case 'p':
			if (duration__parse(optarg, &o->period_ns) ||
			    (o->period_ns && o->period_ns < AGENT_MIN_PERIOD_NS)) {
				log_err("invalid period '%s': expected 0 (on demand) or a duration "
					"of at least 10ms such as 1s",
					optarg);
				return -EINVAL;
			}
			break;
		case 'L':
			o->level_set = false;
			for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
				if (!strcmp(optarg, levels[i])) {
					o->level = (enum log_level)i;
					o->level_set = true;
				}
			if (!o->level_set) {
				log_err("invalid --log-level '%s': expected error, warn, info or "
					"debug",
					optarg);
				return -EINVAL;
			}
			break;
		case 'M':
			if (cmd__parse_max_cgroups(optarg, &o->cpu))
				return -EINVAL;
			break;
		case 'B':
			if (dir__parse("--bpffs", optarg, o->bpffs, sizeof(o->bpffs)))
				return -EINVAL;
			break;
		case 'C':
			o->cleanup = true;
			break;
		case 'S':
			if (dir__parse("--state-dir", optarg, o->state_dir, sizeof(o->state_dir)))
				return -EINVAL;
			break;
		case 's':
			if (cmd__parse_socket(optarg, &o->socket))
				return -EINVAL;
			break;
		case 'F':
			if (!*optarg) {
				log_err("invalid --log-file '': expected a path");
				return -EINVAL;
			}
			o->log_file = optarg;
			break;
		case 'h':
			agent__usage(stdout);
			return 1;
		case ':':
			log_err("option '%s' needs a value (see tally agent --help)",
				argv[optind - 1]);
			return -EINVAL;
		default:
			log_err("unknown option '%s' (see tally agent --help)", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_err("unexpected argument '%s' (see tally agent --help)", argv[optind]);
		return -EINVAL;
	}
	o->cpu.pin_root = o->bpffs[0] ? o->bpffs : NULL;
	return 0;
}

/*
 * Take a generation. Every collection runs here, in the loop, never beside it: a request that
 * comes meanwhile waits in its socket and is then served from this generation, so concurrent
 * requests share one collection (single-flight) without a lock.
 */
static void agent__checkpoint(struct agent *a)
{
	int err = collector__checkpoint(a->c, a->o->state_dir);

	a->checkpoint_ns = clock__monotonic_ns();
	if (err)
		log_warn("failed to write the checkpoint in '%s': %s, ignoring", a->o->state_dir,
			 strerror(-err));
}

/*
 * Background tc attaches that failed, in the log: the first, then each time their count has
 * doubled, since each is tried again at every collection and a lasting cause would otherwise
 * fill the log. The total is tally_net_tc_attach_failures_total.
 */
static void agent__warn_attach_failures(struct agent *a)
{
	struct podnet *pods = collector__podnet(a->c);
	char name[IF_NAMESIZE];
	int ifindex, err;
	uint64_t n;

	if (!pods)
		return;
	n = podnet__attach_failures(pods, &ifindex, &err);
	if (n <= a->attach_warned)
		return;
	log_warn("failed to attach tc to host interface %s (ifindex %d): %s; %llu failed so far, "
		 "each tried again at the next collection",
		 if_indextoname((unsigned)ifindex, name) ? name : "(gone)", ifindex,
		 err == -E2BIG ? "tally's interface map is full" : strerror(-err),
		 (unsigned long long)n);
	a->attach_warned = 2 * n - 1;
}

static int agent__collect(struct agent *a)
{
	const struct cpu_sample *s;
	uint64_t t0 = clock__monotonic_ns(), dt;
	int err;

	err = collector__collect(a->c);
	a->last_try_ns = clock__monotonic_ns();
	body_pool__trim(&a->bodies, a->last_try_ns);
	dt = a->last_try_ns - t0;
	a->last_err = err;
	if (err) {
		/* The collector keeps its previous generation: that one is still served. */
		a->counters.collection_errors++;
		log_err("failed to collect cgroup usage under '%s': %s%s", a->root, strerror(-err),
			a->ready ? " (serving the previous collection)" : "");
		return err;
	}
	/* Completed collections and their durations: the summary's _count and _sum agree. */
	a->counters.collections++;
	a->counters.collection_ns_sum += dt;
	a->counters.collection_ns_last = dt;
	a->ready = true;
	log_debug("collection %llu: %zu cgroups in %.3f ms",
		  (unsigned long long)a->counters.collections, collector__count(a->c), dt / 1e6);
	s = collector__cpu_sample(a->c);
	if (s->dropped_updates > a->dropped_warned) {
		log_warn("the BPF counter map is full (%u cgroups): %llu updates dropped, raise "
			 "--max-cgroups",
			 cpu__max_cgroups(collector__cpu(a->c)),
			 (unsigned long long)s->dropped_updates);
		a->dropped_warned = s->dropped_updates;
	}
	agent__warn_attach_failures(a);
	if (a->o->state_dir[0] && a->last_try_ns - a->checkpoint_ns >= AGENT_CHECKPOINT_NS)
		agent__checkpoint(a);
	return 0;
}

/* On demand (--period 0), collect unless the last collection is recent enough to share. */
static void agent__refresh(struct agent *a)
{
	if (!a->o->period_ns && clock__monotonic_ns() - a->last_try_ns >= AGENT_CACHE_NS)
		agent__collect(a);
}

static void respond__release(void *cls)
{
	body__release(cls);
}

/* Headers every answer has; and the 4xx count. */
static enum MHD_Result respond__queue(struct agent *a, struct MHD_Connection *conn, unsigned status,
				      const char *type, struct MHD_Response *r,
				      const char *encoding)
{
	enum MHD_Result ret;

	if (status >= 400 && status < 500)
		a->counters.requests_rejected++;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (encoding)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, encoding);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (!strcmp(type, PROM_CONTENT_TYPE))
		MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Queue a closed body: its buffer goes back to the pool once MHD has sent it. */
static enum MHD_Result respond(struct agent *a, struct MHD_Connection *conn, unsigned status,
			       const char *type, struct body_buf *buf, const char *encoding)
{
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
	    body__len(buf), (void *)body__data(buf), respond__release, buf);

	if (!r) {
		body__release(buf);
		return MHD_NO; /* MHD closes the connection */
	}
	return respond__queue(a, conn, status, type, r, encoding);
}

/* A constant text: needs no memory of its own, so it also answers "out of memory". */
static enum MHD_Result respond_text(struct agent *a, struct MHD_Connection *conn, unsigned status,
				    const char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

	if (!r)
		return MHD_NO;
	return respond__queue(a, conn, status, "text/plain; charset=utf-8", r, NULL);
}

/* A JSON body: a body from the agent's pool with the one JSON writer on it. NULL: no memory. */
static struct jw *json__open(struct agent *a, struct body *b)
{
	struct jw *w;

	if (body__open(b, &a->bodies, false))
		return NULL;
	w = jw__new(b->f, false);
	if (!w && !body__close(b))
		body__release(b->buf);
	return w;
}

static enum MHD_Result respond_json(struct agent *a, struct MHD_Connection *conn, unsigned status,
				    struct body *b, struct jw *w)
{
	jw__free(w);
	fputc('\n', b->f);
	if (body__close(b))
		return respond_text(a, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return respond(a, conn, status, "application/json", b->buf, NULL);
}

static enum MHD_Result respond_error(struct agent *a, struct MHD_Connection *conn, unsigned status,
				     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* {"error": "..."}, as every JSON error tally prints. */
static enum MHD_Result respond_error(struct agent *a, struct MHD_Connection *conn, unsigned status,
				     const char *fmt, ...)
{
	struct body b;
	struct jw *w;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w = json__open(a, &b);
	if (!w)
		return respond_text(a, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	jw__begin_object(w);
	jw__kv_string(w, "error", msg);
	jw__end_object(w);
	return respond_json(a, conn, status, &b, w);
}

/* Everything but /healthz needs a collection to serve. */
static bool agent__serving(struct agent *a)
{
	agent__refresh(a);
	return a->ready;
}

static enum MHD_Result agent__unavailable(struct agent *a, struct MHD_Connection *conn)
{
	return respond_error(a, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no collection yet: %s",
			     a->last_err ? strerror(-a->last_err) : "starting");
}

static enum MHD_Result agent__healthz(struct agent *a, struct MHD_Connection *conn)
{
	if (!a->ready)
		return respond_text(a, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no collection yet\n");
	return respond_text(a, conn, MHD_HTTP_OK, "ok\n");
}

/* One part of /metrics, written on a thread of its own: the document and its body. */
struct metrics_part {
	const struct prom_doc *doc;
	struct body *b;
	int part;
	int err;
};

static void *metrics__write_part(void *arg)
{
	struct metrics_part *p = arg;

	p->err = prom__doc_write(p->b->f, p->doc, p->part);
	return NULL;
}

/*
 * The exposition in two parts written at once, this thread the first and a short-lived one the
 * second, each into a body of its own (compressed while written when the client accepts gzip:
 * then the two are one gzip member), sent one after the other. On this 2-CPU VM, zlib alone
 * takes 7-12 ms over the 3.9 MB of 1,000 containers; halves take half that each.
 */
static enum MHD_Result agent__metrics(struct agent *a, struct MHD_Connection *conn)
{
	bool gzip = prom__accepts_gzip(
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
	struct body b[PROM_PARTS] = {};
	struct metrics_part p[PROM_PARTS] = {};
	struct MHD_IoVec iov[PROM_PARTS];
	struct MHD_Response *r;
	struct prom_doc *doc;
	pthread_t thread;
	bool threaded = false;
	uint64_t t0;
	int err = 0;

	if (!agent__serving(a))
		return agent__unavailable(a, conn);
	t0 = clock__monotonic_ns();
	doc = prom__doc_new(a->c, &a->counters);
	if (!doc)
		err = -ENOMEM;
	for (int i = 0; !err && i < PROM_PARTS; i++) {
		enum body_enc enc = i ? BODY_GZIP_TAIL : BODY_GZIP_HEAD;

		err = body__open(&b[i], &a->bodies, gzip ? enc : BODY_PLAIN);
		p[i] = (struct metrics_part){.doc = doc, .b = &b[i], .part = i};
	}
	if (!err) {
		/* Without a thread (none to be had), the second part after the first. */
		threaded = !pthread_create(&thread, NULL, metrics__write_part, &p[1]);
		metrics__write_part(&p[0]);
		if (threaded)
			pthread_join(thread, NULL);
		else
			metrics__write_part(&p[1]);
	}
	prom__doc_free(doc);
	for (int i = 0; i < PROM_PARTS; i++) {
		if (!b[i].f)
			continue;
		/* Closed either way; the first error is the one told. */
		err = err ?: p[i].err;
		err = body__close(&b[i]) ?: err;
	}
	if (!err && gzip)
		err = body__gzip_seal(b[0].buf, b[1].buf);
	else if (!err)
		body__chain(b[0].buf, b[1].buf);
	if (err) {
		for (int i = 0; i < PROM_PARTS; i++)
			body__release(b[i].buf);
		log_err("failed to write metrics: %s", strerror(-err));
		return respond_text(a, conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "failed to write metrics\n");
	}
	a->counters.scrapes++;
	a->counters.scrape_ns_sum += clock__monotonic_ns() - t0;
	for (int i = 0; i < PROM_PARTS; i++)
		iov[i] = (struct MHD_IoVec){body__data(b[i].buf), body__len(b[i].buf)};
	/* The chain: releasing the first buffer releases both. */
	r = MHD_create_response_from_iovec(iov, PROM_PARTS, respond__release, b[0].buf);
	if (!r) {
		body__release(b[0].buf);
		return MHD_NO;
	}
	return respond__queue(a, conn, MHD_HTTP_OK, PROM_CONTENT_TYPE, r, gzip ? "gzip" : NULL);
}

/* /v1/containers, /v1/containers/ID (id NULL: all) and /v1/pods. */
static enum MHD_Result agent__v1(struct agent *a, struct MHD_Connection *conn, bool pods,
				 const char *id)
{
	unsigned status = MHD_HTTP_OK;
	struct body b;
	struct jw *w;

	if (!agent__serving(a))
		return agent__unavailable(a, conn);
	w = json__open(a, &b);
	if (!w)
		return respond_text(a, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	if (pods) {
		report__pods(w, a->c);
	} else if (!id) {
		report__containers(w, a->c);
	} else if (report__container(w, a->c, id)) {
		/* Nothing was written: the document is the error instead. */
		jw__begin_object(w);
		jw__kv_string(w, "error", "no such container");
		jw__kv_string(w, "id", id);
		jw__end_object(w);
		status = MHD_HTTP_NOT_FOUND;
	}
	return respond_json(a, conn, status, &b, w);
}

/*
 * /v1/stats: what `tally stats` prints, written by the same functions (stats.c), so that the
 * command prints the same bytes through the agent as on its own.
 */
static enum MHD_Result agent__stats(struct agent *a, struct MHD_Connection *conn)
{
	const char *format = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format");
	const char *all = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "all");
	bool json = format && !strcmp(format, "json");
	struct body b;

	if (format && !json && strcmp(format, "table"))
		return respond_error(a, conn, MHD_HTTP_BAD_REQUEST,
				     "unknown format '%.64s': expected table or json", format);
	if (all && strcmp(all, "0") && strcmp(all, "1"))
		return respond_error(a, conn, MHD_HTTP_BAD_REQUEST,
				     "invalid all '%.64s': expected 0 or 1", all);
	if (!agent__serving(a))
		return agent__unavailable(a, conn);
	if (body__open(&b, &a->bodies, false))
		return respond_text(a, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	stats__print(b.f, a->c, json, all && !strcmp(all, "1"));
	if (body__close(&b))
		return respond_text(a, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return respond(a, conn, MHD_HTTP_OK,
		       json ? "application/json" : "text/plain; charset=utf-8", b.buf, NULL);
}

/* The Unix socket is root's (mode 0600); this also refuses a peer that got in anyway. */
static bool agent__peer_is_root(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci && !getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) &&
	       cred.uid == 0;
}

/*
 * The handler. A request is judged on the first call, from its request line and headers,
 * before any body is read: tally takes none, so one with a body (or another method, or too
 * long a URL) is refused unread, and MHD closes the connection after that answer. Others are
 * answered on the second call, once MHD has the whole request, so keep-alive works.
 */
static enum MHD_Result agent__handle(void *cls, struct MHD_Connection *conn, const char *url,
				     const char *method, const char *version,
				     const char *upload_data, size_t *upload_data_size, void **req)
{
	static const char containers[] = "/v1/containers/";
	const union MHD_ConnectionInfo *ci;
	struct agent *a = cls;
	const char *len;

	if (*req && *upload_data_size) {
		/* Not reached (a body was refused above); drop it rather than buffer it. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!*req) {
		*req = a;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (ci && ci->socket_context)
			((struct agent_conn *)ci->socket_context)->requests++;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
		if (ci && ci->daemon == a->local && !agent__peer_is_root(conn))
			return respond_error(a, conn, MHD_HTTP_FORBIDDEN,
					     "the local socket serves root only");
		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return respond_error(a, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					     "method not allowed: only GET and HEAD");
		len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						  MHD_HTTP_HEADER_CONTENT_LENGTH);
		if ((len && strcmp(len, "0")) ||
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						MHD_HTTP_HEADER_TRANSFER_ENCODING))
			return respond_error(a, conn, MHD_HTTP_CONTENT_TOO_LARGE,
					     "a request body is not accepted");
		if (strlen(url) > AGENT_MAX_URL)
			return respond_error(a, conn, MHD_HTTP_URI_TOO_LONG,
					     "URL longer than %u bytes", AGENT_MAX_URL);
		return MHD_YES;
	}
	if (!strcmp(url, "/healthz"))
		return agent__healthz(a, conn);
	if (!strcmp(url, "/metrics"))
		return agent__metrics(a, conn);
	if (!strcmp(url, "/v1/containers"))
		return agent__v1(a, conn, false, NULL);
	if (!strncmp(url, containers, sizeof(containers) - 1) && url[sizeof(containers) - 1])
		return agent__v1(a, conn, false, url + sizeof(containers) - 1);
	if (!strcmp(url, "/v1/pods"))
		return agent__v1(a, conn, true, NULL);
	if (!strcmp(url, "/v1/stats"))
		return agent__stats(a, conn);
	return respond_error(a, conn, MHD_HTTP_NOT_FOUND, "not found");
}

/*
 * MHD parsed a request line. Returns the request's context, which must stay NULL: the handler
 * tells its first call by it.
 */
static void *agent__on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context)
		((struct agent_conn *)ci->socket_context)->lines++;
	return NULL;
}

/*
 * Requests MHD refused itself after their request line (headers too large: 431; a malformed
 * header line: 400) or that the client abandoned mid-headers never reach the handler: count
 * them as rejected when the connection closes. What MHD drops before it has a request line
 * (a line with no space, which it closes without an answer; a bad HTTP version, 400 or 505; a
 * line longer than the connection's memory, 414) and connections that send nothing are not
 * requests it tells us about, and are not counted (docs/METRICS.md).
 */
static void agent__on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
				 enum MHD_ConnectionNotificationCode code)
{
	struct agent *a = cls;
	struct agent_conn *ac = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct agent_conn));
		return;
	}
	if (ac && ac->lines > ac->requests && !a->stop)
		a->counters.requests_rejected += ac->lines - ac->requests;
	free(ac);
	*socket_context = NULL;
}

/* MHD's own messages (a client that broke the protocol, mostly): debug only. */
static void agent__http_log(void *cls, const char *fmt, va_list ap)
{
	char *msg = NULL;
	int len;

	if (log__level() < LOG_DEBUG)
		return;
	len = vasprintf(&msg, fmt, ap);
	if (len < 0)
		return;
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	log_debug("http: %s", msg);
	free(msg);
}

/* "1.2.3.4:80" or "[::1]:80". */
static void addr__format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
	bool v6 = ss->ss_family == AF_INET6;
	char host[INET6_ADDRSTRLEN] = "?";

	inet_ntop(ss->ss_family, v6 ? (const void *)&a6->sin6_addr : (const void *)&a4->sin_addr,
		  host, sizeof(host));
	snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", host,
		 ntohs(v6 ? a6->sin6_port : a4->sin_port));
}

/* Our own socket, so that a failed bind says why (MHD only returns NULL). fd or -errno. */
static int agent__listen(struct agent *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, one = 1, err;

	fd = socket(a->o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->o->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->o->addr, a->o->addrlen) ||
	    listen(fd, AGENT_BACKLOG) || getsockname(fd, (struct sockaddr *)&ss, &len)) {
		err = -errno;
		close(fd);
		return err;
	}
	addr__format(&ss, a->listen, sizeof(a->listen));
	return fd;
}

static int unix__bind(int fd, const struct sockaddr_un *sun)
{
	mode_t old = umask(0177); /* born 0600: no window where others could connect */
	int err = bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) ? -errno : 0;

	umask(old);
	return err;
}

/*
 * Whether an agent answers on path: 1 (its pid in *pid), 0 (nothing listens: a socket file
 * left by an agent that was killed), or -errno (not a socket, not ours to judge).
 */
static int unix__probe(const struct sockaddr_un *sun, pid_t *pid)
{
	struct ucred cred = {};
	socklen_t len = sizeof(cred);
	struct stat st;
	int fd, err;

	if (lstat(sun->sun_path, &st))
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Non-blocking: a live agent with a full backlog answers EAGAIN, which is live too. */
	err = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) ? -errno : 0;
	if (!err || err == -EAGAIN) {
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
			*pid = cred.pid;
		close(fd);
		return 1;
	}
	close(fd);
	return err == -ECONNREFUSED ? 0 : err;
}

/* The socket's directory, created 0700 when missing. */
static int socket__mkdir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
	}
	return 0;
}

/*
 * One agent per socket: PATH.lock, flock'd for the agent's life (never removed: removing a lock
 * file races with its next taker). Taken before the socket is probed, so that two agents
 * started at once cannot both replace a stale socket. fd, or -EADDRINUSE with *live the pid the
 * holder wrote in it, or -errno.
 */
static int socket__lock(const char *path, pid_t *live)
{
	char lock[PATH_MAX], pid[24];
	ssize_t n;
	int fd, err;

	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", path) >= sizeof(lock))
		return -ENAMETOOLONG;
	err = socket__mkdir(path);
	if (err)
		return err;
	fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		*live = (pid_t)atoi(pid);
		close(fd);
		return err;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("failed to write the pid in '%s': %s, ignoring", lock, strerror(errno));
	return fd;
}

/*
 * The local API's socket: created 0600 (its directory 0700 if missing), a stale one replaced,
 * a live one left alone. fd or -errno, with *live the other agent's pid for -EADDRINUSE.
 */
static int agent__listen_unix(struct agent *a, pid_t *live)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const char *path = a->o->socket;
	struct stat st;
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	a->sock_lock = socket__lock(path, live);
	if (a->sock_lock < 0)
		return a->sock_lock;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = unix__bind(fd, &sun);
	if (err == -EADDRINUSE) {
		err = unix__probe(&sun, live);
		if (err == 0) {
			/* Stale: nothing listens. Replace it. */
			if (unlink(path) && errno != ENOENT)
				err = -errno;
			else
				err = unix__bind(fd, &sun);
		} else if (err == 1) {
			err = -EADDRINUSE;
		}
	}
	if (!err && (listen(fd, AGENT_BACKLOG) || lstat(path, &st)))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	a->sock_dev = st.st_dev;
	a->sock_ino = st.st_ino;
	return fd;
}

/* Remove the socket file at exit, if it is still the one this agent made. */
static void agent__unlink_socket(struct agent *a)
{
	struct stat st;

	if (!a->sock_ino || lstat(a->o->socket, &st) || st.st_dev != a->sock_dev ||
	    st.st_ino != a->sock_ino)
		return;
	if (unlink(a->o->socket))
		log_warn("failed to remove socket '%s': %s, ignoring", a->o->socket,
			 strerror(errno));
}

/* The same API with the same limits, on the TCP listener or the Unix socket. */
static struct MHD_Daemon *agent__http_start(struct agent *a, int lfd, unsigned flags)
{
	/* MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD: MHD runs in our loop. */
	return MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | flags, 0, NULL, NULL,
				agent__handle, a, MHD_OPTION_EXTERNAL_LOGGER, agent__http_log, a,
				MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)AGENT_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				(size_t)AGENT_CONN_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)AGENT_CONN_TIMEOUT_S, MHD_OPTION_NOTIFY_CONNECTION,
				agent__on_connection, a, MHD_OPTION_URI_LOG_CALLBACK,
				agent__on_request_line, a, MHD_OPTION_END);
}

static int epoll__add(int epfd, int fd, enum agent_fd what)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = what};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void agent__free(struct agent *a)
{
	if (!a)
		return;
	/* HTTP first: no request may see the collector go. */
	if (a->http)
		MHD_stop_daemon(a->http);
	if (a->local)
		MHD_stop_daemon(a->local);
	body_pool__free(&a->bodies); /* after MHD: its responses gave their buffers back */
	agent__unlink_socket(a);
	if (a->sock_lock >= 0)
		close(a->sock_lock); /* the next agent may take the socket now */
	/* The layers' latest numbers, for the next agent to serve while it walks them again. */
	if (a->c && a->ready && a->o->state_dir[0])
		agent__checkpoint(a);
	collector__free(a->c);
	if (a->timerfd >= 0)
		close(a->timerfd);
	if (a->sigfd >= 0)
		close(a->sigfd);
	if (a->epfd >= 0)
		close(a->epfd);
	free(a);
}

/* What a restart found under --bpffs: counters taken over, or another layout replaced. */
static void agent__log_pins(struct agent *a)
{
	struct tally_cpu *cpu = collector__cpu(a->c);
	struct tally_net *net = collector__net(a->c);

	if (!a->o->cpu.pin_root)
		return;
	if (cpu__replaced(cpu)[0])
		log_warn("replaced the CPU programs pinned in '%s' (another tally build or other "
			 "options): CPU totals continue from cpu.stat",
			 cpu__replaced(cpu));
	if (net && net__replaced(net)[0])
		log_warn("replaced the network programs pinned in '%s' (another tally build or "
			 "other options): socket counters start over, devices' tc links moved "
			 "to the new programs with no gap",
			 net__replaced(net));
	log_info("%s BPF counters pinned under '%s'",
		 cpu__resumed(cpu) ? "continuing the" : "counting with new", a->o->cpu.pin_root);
}

/*
 * Listen, load the BPF programs, take the first collection, and set up the loop. The signals
 * are already blocked (a SIGTERM during start-up waits for the loop). NULL on failure, logged.
 */
static struct agent *agent__new(const struct agent_opts *o, const char *root, const sigset_t *sigs)
{
	struct itimerspec its = {};
	struct agent *a;
	pid_t live = 0;
	int lfd, err;

	a = calloc(1, sizeof(*a));
	if (!a) {
		log_err("failed to start the agent: %s", strerror(ENOMEM));
		return NULL;
	}
	a->o = o;
	a->epfd = a->timerfd = a->sigfd = a->sock_lock = -1;
	snprintf(a->root, sizeof(a->root), "%s", root);
	lfd = agent__listen(a);
	if (lfd < 0) {
		addr__format(&o->addr, a->listen, sizeof(a->listen));
		log_err("failed to listen on '%s': %s", a->listen, strerror(-lfd));
		goto fail;
	}
	a->http = agent__http_start(a, lfd, o->addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	if (!a->http) {
		close(lfd); /* MHD closes a given socket only once started */
		log_err("failed to start the HTTP server on '%s'", a->listen);
		goto fail;
	}
	/* libbpf's load log is for 'tally -v agent', not for --log-level debug. */
	if (!o->verbose && o->level > LOG_INFO)
		log__set_level(LOG_INFO);
	a->c = cmd__collector_new(root, &o->cpu, "agent");
	log__set_level(o->level);
	if (!a->c)
		goto fail;
	agent__log_pins(a);
	{
		size_t bad = 0;

		err = collector__background_layers(a->c, o->state_dir[0] ? o->state_dir : NULL,
						   &bad);
		if (err)
			log_warn("failed to read the checkpoint in '%s': %s, ignoring",
				 o->state_dir, strerror(-err));
		if (bad)
			log_warn("skipped %zu lines of the checkpoint in '%s' that did not parse",
				 bad, o->state_dir);
	}
	/* tc attach and detach on a worker: an RCU grace period each, never in the loop. */
	podnet__background(collector__podnet(a->c));
	/* After the load, so that a user who is not root hears that first. */
	if (o->socket) {
		lfd = agent__listen_unix(a, &live);
		if (lfd == -EADDRINUSE) {
			log_err(
			    "failed to listen on '%s': a tally agent (pid %d) is serving there; "
			    "stop it, or give this one another --socket",
			    o->socket, (int)live);
			goto fail;
		}
		if (lfd < 0) {
			log_err("failed to listen on '%s': %s%s", o->socket, strerror(-lfd),
				lfd == -EEXIST ? " (and it is not a socket: not replaced)" : "");
			goto fail;
		}
		a->local = agent__http_start(a, lfd, 0);
		if (!a->local) {
			close(lfd);
			log_err("failed to start the HTTP server on '%s'", o->socket);
			goto fail;
		}
	}
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->sigfd = signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (a->epfd < 0 || a->sigfd < 0) {
		err = -errno;
		goto fail_loop;
	}
	err = epoll__add(a->epfd, a->sigfd, AGENT_SIGNAL);
	if (!err)
		err = epoll__add(a->epfd,
				 MHD_get_daemon_info(a->http, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd,
				 AGENT_HTTP);
	if (!err && a->local)
		err = epoll__add(a->epfd,
				 MHD_get_daemon_info(a->local, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd,
				 AGENT_LOCAL);
	/* Drained as it fills (disk__read), applied at each collection. */
	if (!err && collector__disk(a->c))
		err = epoll__add(a->epfd, disk__fd(collector__disk(a->c)), AGENT_DISK);
	if (!err && o->period_ns) {
		its.it_value.tv_sec = its.it_interval.tv_sec = o->period_ns / NSEC_PER_SEC;
		its.it_value.tv_nsec = its.it_interval.tv_nsec = o->period_ns % NSEC_PER_SEC;
		a->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (a->timerfd < 0 || timerfd_settime(a->timerfd, 0, &its, NULL))
			err = -errno;
		else
			err = epoll__add(a->epfd, a->timerfd, AGENT_TIMER);
	}
	if (err)
		goto fail_loop;
	/* The first collection seeds every cgroup's CPU from cpu.stat; logged if it fails. */
	agent__collect(a);
	return a;
fail_loop:
	log_err("failed to set up the event loop: %s", strerror(-err));
fail:
	agent__free(a);
	return NULL;
}

static void agent__signal(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP: {
			/* With stderr there is nothing to reopen: whoever started us owns it. */
			int err = log__reopen();

			if (err)
				log_err("failed to reopen log file '%s': %s (still logging to the "
					"old one)",
					log__file(), strerror(-err));
			else if (log__file())
				log_info("received SIGHUP: reopened logs ('%s')", log__file());
			else
				log_info("received SIGHUP: logging to stderr, nothing to reopen");
			break;
		}
		default:
			log_info("received SIG%s: shutting down", sigabbrev_np(si.ssi_signo));
			a->stop = true;
		}
	}
}

static int agent__run(struct agent *a)
{
	struct epoll_event ev[8];
	uint64_t ticks;

	while (!a->stop) {
		MHD_UNSIGNED_LONG_LONG ms;
		int timeout = -1, n;

		/* MHD's connection timeouts and pending work: wake up in time for them. */
		if (MHD_get_timeout(a->http, &ms) == MHD_YES)
			timeout = ms > INT_MAX ? INT_MAX : (int)ms;
		if (a->local && MHD_get_timeout(a->local, &ms) == MHD_YES &&
		    (timeout < 0 || ms < (MHD_UNSIGNED_LONG_LONG)timeout))
			timeout = ms > INT_MAX ? INT_MAX : (int)ms;
		n = epoll_wait(a->epfd, ev, sizeof(ev) / sizeof(ev[0]), timeout);
		if (n < 0 && errno != EINTR) {
			int err = -errno;

			log_err("failed to wait for events: %s", strerror(-err));
			return err;
		}
		for (int i = 0; i < n; i++) {
			switch (ev[i].data.u32) {
			case AGENT_TIMER:
				/* Missed ticks (a slow collection) are dropped, not caught up. */
				if (read(a->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks))
					agent__collect(a);
				break;
			case AGENT_SIGNAL:
				agent__signal(a);
				break;
			case AGENT_DISK: {
				int err = disk__read(collector__disk(a->c));

				if (err < 0)
					log_warn("failed to read fanotify events: %s, ignoring",
						 strerror(-err));
				break;
			}
			case AGENT_HTTP:
			case AGENT_LOCAL:
				break; /* MHD_run below */
			}
		}
		if (!a->stop) {
			MHD_run(a->http);
			if (a->local)
				MHD_run(a->local);
		}
	}
	return 0;
}

static const char *agent__hooks(struct agent *a, char *buf, size_t len)
{
	struct tally_cpu *cpu = collector__cpu(a->c);

	snprintf(buf, len, "sched_switch via %s, %s reads, removal %s, tree %s, network %s%s",
		 cpu__switch_hook(cpu), cpu__batch_reads(cpu) ? "batch" : "per-key",
		 cpu__tracks_removal(cpu) ? "by tracepoint" : "reconciled by walks",
		 cpu__tracks_tree(cpu) ? "walked on change" : "walked every collection",
		 collector__net(a->c) ? "tc via " : "unavailable",
		 collector__net(a->c) ? net__tc_mode(collector__net(a->c)) : "");
	return buf;
}

/* --cleanup: what agents pinned goes (links detach), and tally's classic tc filters. */
static int agent__cleanup(const struct agent_opts *o)
{
	int removed, err;

	if (geteuid()) {
		log_err("failed to clean up: tally agent --cleanup needs root");
		return 1;
	}
	if (!o->bpffs[0]) {
		log_err("failed to clean up: --cleanup needs a --bpffs directory, not 'none'");
		return 2;
	}
	err = pin__remove_all(o->bpffs);
	if (err && err != -ENOENT) {
		log_err("failed to remove the pins under '%s': %s", o->bpffs, strerror(-err));
		return 1;
	}
	err = o->state_dir[0] ? ckpt__remove(o->state_dir) : 0;
	if (err)
		log_warn("failed to remove the checkpoint in '%s': %s, ignoring", o->state_dir,
			 strerror(-err));
	removed = net__remove_classic_filters();
	if (removed < 0)
		log_warn("failed to list tc filters: %s, ignoring", strerror(-removed));
	log_info("%s '%s'%s", err == -ENOENT ? "nothing pinned under" : "removed",
		 o->bpffs, removed > 0 ? " and tally's classic tc filters" : "");
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	struct agent_opts o = {.level = LOG_INFO};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	struct agent *a = NULL;
	struct prom_agent counters;
	sigset_t sigs, old;
	char root[PATH_MAX], hooks[256], period[64], caps[512], sock[PATH_MAX + 16] = "";
	uint64_t kept;
	int err, ret = 1;

	err = agent__parse(argc, argv, &o);
	if (err)
		return err > 0 ? 0 : 2;
	/*
	 * Response bodies of megabytes (/metrics at 1,000 containers) come from mmap and go back
	 * to the kernel when freed; below glibc's adaptive threshold they stayed in the heap,
	 * about 8 MiB of RSS after one scrape.
	 */
	mallopt(M_MMAP_THRESHOLD, AGENT_MMAP_THRESHOLD);
	if (o.log_file) {
		err = log__open_file(o.log_file);
		if (err) {
			log_err("failed to open log file '%s': %s", o.log_file, strerror(-err));
			return 1;
		}
	}
	/* --log-level wins; else info, or debug when 'tally -v agent' asked for it. */
	o.verbose = log__level() >= LOG_DEBUG;
	if (!o.level_set)
		o.level = o.verbose ? LOG_DEBUG : LOG_INFO;
	log__set_level(o.level);
	if (o.cleanup)
		return agent__cleanup(&o);
	if (cmd__preflight(root, sizeof(root)))
		return 1;
	/* A client that goes away mid-answer, or a closed stderr, is no reason to die. */
	sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, &old);
	a = agent__new(&o, root, &sigs);
	if (!a)
		goto out;
	/* Everything that needed more is done: programs loaded and attached, sockets bound. */
	err = caps__restrict(AGENT_KEEP_CAPS, &kept);
	if (err) {
		log_err("failed to drop capabilities: %s", strerror(-err));
		goto out;
	}
	caps__format(kept, caps, sizeof(caps));
	log_info("kept capabilities %s; dropped every other one and set no_new_privs", caps);
	if (o.socket)
		snprintf(sock, sizeof(sock), " and '%s'", o.socket);
	if (o.period_ns)
		snprintf(period, sizeof(period), "collecting every %g s", o.period_ns / 1e9);
	else
		snprintf(period, sizeof(period), "collecting on demand (shared for %llu ms)",
			 AGENT_CACHE_NS / 1000000);
	log_info("listening on %s%s, %s; cgroup2 at '%s'; %s", a->listen, sock, period, root,
		 agent__hooks(a, hooks, sizeof(hooks)));
	if (!agent__run(a))
		ret = 0;
	counters = a->counters;
	/* Said once everything is detached, so "stopped" means it. */
	agent__free(a);
	log_info("stopped after %llu collections (%llu failed) and %llu scrapes",
		 (unsigned long long)counters.collections,
		 (unsigned long long)counters.collection_errors,
		 (unsigned long long)counters.scrapes);
	a = NULL;
out:
	agent__free(a);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}
