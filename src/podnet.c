// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discovery.h"
#include "podnet.h"
#include "util.h"

/* A namespace whose veths are not all matched yet (CNI still at work) is entered again. */
#define PODNET_MAX_PROBES 30

/* A host-side veth tally counts, or is about to. */
struct attachment {
	int ifindex;
	bool on;	 /* tc attached (picked up from the worker, in the background) */
	int err;	 /* the attach failed: tried again at the next reconciliation */
	uint64_t cookie; /* of the attach job in flight, else 0 */
};

struct podnet {
	struct tally_net *net; /* may be NULL */
	bool background;       /* attach and detach through net__submit */
	bool holding;	       /* the worker is held for this tick (net__hold) */
	uint64_t cookies;
	struct netif_sock *host;
	struct netif_events *events;
	struct netif_list links; /* this tick's dump of the host namespace */
	uint64_t host_ino;
	uint64_t gen;
	struct podnet_ns *ns; /* unsorted: a node has few namespaces per tick to look up */
	size_t nns, capns;
	struct attachment *attached; /* host ifindexes with tally's tc programs, or on their way */
	size_t nattached, capattached;
	bool resync;		  /* events were lost: reconcile the attachments from the dump */
	uint64_t attach_failures; /* see podnet__attach_failures */
	int failed_ifindex, failed_err;
};

static int ns_ino_of(int fd, uint64_t *ino)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

struct podnet *podnet__new(struct tally_net *net)
{
	struct podnet *p = calloc(1, sizeof(*p));
	int fd = -1, err;

	if (!p)
		return NULL;
	p->net = net;
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	err = ns_ino_of(fd, &p->host_ino);
	close(fd);
	if (err)
		goto fail;
	/* Events first, then the first dump: no veth can appear unseen in between. */
	p->events = netif_events__new();
	if (!p->events) {
		err = -errno;
		goto fail;
	}
	p->host = netif_sock__new();
	if (!p->host) {
		err = -errno;
		goto fail;
	}
	p->resync = true;
	return p;
fail:
	podnet__free(p);
	errno = -err;
	return NULL;
}

static void ns__clear(struct podnet_ns *ns)
{
	free(ns->ifs);
	ns->ifs = NULL;
	ns->n = 0;
}

void podnet__free(struct podnet *p)
{
	if (!p)
		return;
	/*
	 * net__free stops the worker, then detaches the devices' programs (or leaves them pinned
	 * for the next agent).
	 */
	if (p->holding)
		net__hold(p->net, false);
	free(p->attached);
	for (size_t i = 0; i < p->nns; i++)
		ns__clear(&p->ns[i]);
	free(p->ns);
	netif_list__free(&p->links);
	netif_sock__free(p->host);
	netif_events__free(p->events);
	free(p);
}

/* A host-side veth of a pod: a veth whose peer is in another namespace. */
static bool is_pod_peer(const struct netif_link *l)
{
	return !strcmp(l->kind, "veth") && l->link_netnsid >= 0;
}

static struct attachment *attached__find(const struct podnet *p, int ifindex)
{
	for (size_t i = 0; i < p->nattached; i++)
		if (p->attached[i].ifindex == ifindex)
			return &p->attached[i];
	return NULL;
}

/* A device gone before tc got to it: its DELLINK follows. */
static bool attach__gone(int err)
{
	return err == -ENODEV || err == -ENXIO;
}

/* Attach tc to a host veth, or queue that; a failed attachment is tried again. */
static int attach(struct podnet *p, int ifindex)
{
	struct attachment *a = p->net ? attached__find(p, ifindex) : NULL;
	bool fresh = !a;
	int err;

	if (!p->net || (a && !a->err))
		return 0;
	if (fresh) {
		if (p->nattached == p->capattached) {
			size_t cap = p->capattached ? p->capattached * 2 : 16;
			struct attachment *v = realloc(p->attached, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			p->attached = v;
			p->capattached = cap;
		}
		a = &p->attached[p->nattached];
	}
	*a = (struct attachment){.ifindex = ifindex};
	if (p->background) {
		a->cookie = ++p->cookies;
		err = net__submit(p->net, ifindex, true, a->cookie);
	} else {
		err = net__attach_if(p->net, ifindex);
		a->on = !err;
	}
	if (!err) {
		p->nattached += fresh;
		return 0;
	}
	if (!fresh)
		*a = p->attached[--p->nattached];
	return attach__gone(err) ? 0 : err;
}

static void detach(struct podnet *p, int ifindex)
{
	struct attachment *a = attached__find(p, ifindex);

	if (!a)
		return;
	/*
	 * In the background the detach queues behind the attach, even one still queued: the
	 * worker's order makes sure nothing of the device is left (no pin, no entry, no fd).
	 */
	if (!p->background)
		net__detach_if(p->net, ifindex);
	else if (!a->err && net__submit(p->net, ifindex, false, 0))
		net__detach_if(p->net, ifindex); /* no memory for the job: here, then */
	*a = p->attached[--p->nattached];
}

/* net__drain: an attach job's result, unless the device was detached (or again) since. */
static void on_job_done(const struct net_job *j, void *ctx)
{
	struct podnet *p = ctx;
	struct attachment *a = attached__find(p, j->ifindex);

	if (!j->attach || !a || a->cookie != j->cookie)
		return;
	a->cookie = 0;
	a->on = !j->err;
	a->err = j->err;
	if (attach__gone(j->err)) {
		*a = p->attached[--p->nattached];
	} else if (j->err) {
		/* Nobody waits for the job to hear it: counted here, told by the agent. */
		p->attach_failures++;
		p->failed_ifindex = j->ifindex;
		p->failed_err = j->err;
	}
}

void podnet__background(struct podnet *p)
{
	if (p && p->net)
		p->background = true;
}

static void on_link_event(const struct netif_link *l, bool del, void *ctx)
{
	struct podnet *p = ctx;

	/*
	 * A new veth's event often lacks its peer (see netif.h): the full dump that follows
	 * says. Any other change (a rename, a move) also calls for a full dump.
	 */
	if (del)
		detach(p, l->ifindex);
	else
		p->resync = true;
}

int podnet__begin(struct podnet *p)
{
	int err;

	p->gen++;
	/*
	 * The worker waits while the tick runs: its netlink requests (the dump, entering new
	 * namespaces) would each wait for an attach under way (net__hold). A tick that did not end
	 * (an error) lets the worker go once before holding it again, so errors cannot starve it.
	 */
	if (p->background) {
		p->holding = !p->holding;
		net__hold(p->net, p->holding);
	}
	err = netif_events__read(p->events, on_link_event, p);
	if (err == -ENOBUFS)
		p->resync = true;
	else if (err && err != -EAGAIN)
		return err;
	/* Links only when they changed; per tick, their counters alone. */
	err = p->resync ? -EAGAIN : netif_sock__dump_stats(p->host, &p->links);
	if (err == -EAGAIN) {
		p->resync = true;
		err = netif_sock__dump_links(p->host, &p->links);
	}
	if (err)
		return err;
	if (p->resync) {
		/* Attach to every pod peer, detach from what is gone or is no pod peer now. */
		for (size_t i = p->nattached; i-- > 0;) {
			const struct netif_link *l =
			    netif_list__find(&p->links, p->attached[i].ifindex);

			if (!l || !is_pod_peer(l))
				detach(p, p->attached[i].ifindex);
		}
		for (size_t i = 0; i < p->links.n; i++) {
			if (!is_pod_peer(&p->links.v[i]))
				continue;
			err = attach(p, p->links.v[i].ifindex);
			if (err)
				return err;
		}
		p->resync = false;
	}
	/*
	 * Background attaches that failed, again at every tick: a full if_net may have room now,
	 * a refusal may have passed. A device that went was dropped above, with its events.
	 */
	for (size_t i = p->nattached; p->background && i-- > 0;) {
		if (p->attached[i].err && !p->attached[i].cookie) {
			err = attach(p, p->attached[i].ifindex);
			if (err)
				return err;
		}
	}
	/* After the events: a device gone with its attach in flight had its detach queued. */
	if (p->background)
		net__drain(p->net, on_job_done, p);
	return 0;
}

static struct podnet_ns *ns__find(const struct podnet *p, uint64_t ino)
{
	for (size_t i = 0; i < p->nns; i++)
		if (p->ns[i].ino == ino)
			return &p->ns[i];
	return NULL;
}

const struct podnet_ns *podnet__ns(const struct podnet *p, uint64_t ino)
{
	return ns__find(p, ino);
}

/* Still worth entering again: no interface, or a veth whose host peer is not known yet. */
static bool ns__incomplete(const struct podnet_ns *ns)
{
	if (!ns->n)
		return true;
	for (size_t i = 0; i < ns->n; i++)
		if (!ns->ifs[i].host_ifindex)
			return true;
	return false;
}

/* Enter the namespace at nsfd once: its links (loopback left out), their host peers. */
static int ns__inspect(struct podnet *p, struct podnet_ns *ns, int nsfd)
{
	struct netns_info info = {};
	struct podnet_if *ifs = NULL;
	size_t n = 0;
	int err, def = -1;

	err = netns__inspect(nsfd, &info);
	if (err)
		return err;
	if (info.links.n) {
		ifs = calloc(info.links.n, sizeof(*ifs));
		if (!ifs) {
			netns_info__free(&info);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < info.links.n; i++) {
		const struct netif_link *l = &info.links.v[i];
		struct podnet_if *f;

		if (l->flags & IFF_LOOPBACK)
			continue;
		f = &ifs[n];
		memcpy(f->name, l->name, sizeof(f->name));
		f->name[sizeof(f->name) - 1] = '\0';
		f->ifindex = l->ifindex;
		f->host_ifindex = netif__host_peer(&info, l, &p->links);
		if ((int)i == info.default_idx)
			def = (int)n;
		n++;
	}
	ns__clear(ns);
	ns->ifs = ifs;
	ns->n = n;
	ns->default_idx = def;
	ns->probes++;
	netns_info__free(&info);
	return 0;
}

/* The first pid of a cgroup whose network namespace can be opened; -ESRCH: none. */
static int cgroup__netns(const char *cgdir, int *nsfd)
{
	char path[PATH_MAX], *procs = NULL;
	size_t len = 0, pos = 0;
	pid_t pid;
	int err;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", cgdir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	err = file__read_all(path, &procs, &len);
	if (err == -ENOENT || err == -ENODEV)
		return -ESRCH;
	if (err)
		return err;
	err = -ESRCH;
	while ((pid = cgroup_procs__next(procs, len, &pos)) > 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
		*nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (*nsfd >= 0) {
			err = 0;
			break;
		}
		/* exited between the two reads: try the next one */
		if (errno != ENOENT && errno != ESRCH) {
			err = -errno;
			break;
		}
	}
	free(procs);
	return err;
}

int podnet__lookup(struct podnet *p, const char *cgdir, uint64_t *ino)
{
	struct podnet_ns *ns;
	int fd = -1, err;

	*ino = 0;
	err = cgroup__netns(cgdir, &fd);
	if (err)
		return err;
	err = ns_ino_of(fd, ino);
	if (err)
		goto out;
	if (*ino == p->host_ino) {
		*ino = 0;
		goto out;
	}
	ns = ns__find(p, *ino);
	if (ns && (!ns__incomplete(ns) || ns->probes >= PODNET_MAX_PROBES))
		goto out;
	if (!ns) {
		if (p->nns == p->capns) {
			size_t cap = p->capns ? p->capns * 2 : 16;
			struct podnet_ns *v = realloc(p->ns, cap * sizeof(*v));

			if (!v) {
				err = -ENOMEM;
				goto out;
			}
			p->ns = v;
			p->capns = cap;
		}
		ns = &p->ns[p->nns++];
		*ns = (struct podnet_ns){.ino = *ino, .default_idx = -1};
	}
	ns->gen = p->gen;
	err = ns__inspect(p, ns, fd);
out:
	close(fd);
	return err;
}

void podnet__ref(struct podnet *p, uint64_t ino)
{
	struct podnet_ns *ns = ns__find(p, ino);

	if (ns)
		ns->gen = p->gen;
}

/* The host device's counters from the pod's side: what the host receives, the pod sent. */
static void stats__flip(const struct netif_stats *h, struct netif_stats *pod)
{
	*pod = (struct netif_stats){
	    .rx_bytes = h->tx_bytes,
	    .rx_packets = h->tx_packets,
	    .rx_errors = h->tx_errors,
	    .rx_dropped = h->tx_dropped,
	    .tx_bytes = h->rx_bytes,
	    .tx_packets = h->rx_packets,
	    .tx_errors = h->rx_errors,
	    .tx_dropped = h->rx_dropped,
	};
}

int podnet__end(struct podnet *p)
{
	size_t out = 0;

	if (p->background) {
		net__drain(p->net, on_job_done, p);
		if (p->holding)
			net__hold(p->net, false);
		p->holding = false;
	}
	for (size_t i = 0; i < p->nns; i++) {
		struct podnet_ns *ns = &p->ns[i];

		if (ns->gen != p->gen) {
			ns__clear(ns); /* no container uses it any more */
			continue;
		}
		for (size_t j = 0; j < ns->n; j++) {
			const struct attachment *a;
			struct podnet_if *f = &ns->ifs[j];
			const struct netif_link *l =
			    f->host_ifindex ? netif_list__find(&p->links, f->host_ifindex) : NULL;

			/* The peer must still be this interface's: ifindexes are reused. */
			f->has_stats = l && l->link_ifindex == f->ifindex;
			if (f->has_stats)
				stats__flip(&l->stats, &f->stats);
			f->has_proto = false;
			a = f->has_stats && p->net ? attached__find(p, f->host_ifindex) : NULL;
			/*
			 * Not attached yet (or it failed): no breakdown, which is not a zero one.
			 * Attached, the entry is there from before the programs were.
			 */
			if (a && a->on)
				f->has_proto = !net__read_if(p->net, f->host_ifindex, &f->proto);
		}
		p->ns[out++] = *ns;
	}
	p->nns = out;
	return 0;
}

size_t podnet__count(const struct podnet *p)
{
	return p->nns;
}

size_t podnet__attached(const struct podnet *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nattached; i++)
		n += p->attached[i].on;
	return n;
}

size_t podnet__attaching(const struct podnet *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nattached; i++)
		n += p->attached[i].cookie != 0;
	return n;
}

uint64_t podnet__attach_failures(const struct podnet *p, int *ifindex, int *err)
{
	*ifindex = p->failed_ifindex;
	*err = p->failed_err;
	return p->attach_failures;
}
