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

struct podnet {
	struct tally_net *net; /* may be NULL */
	struct netif_sock *host;
	struct netif_events *events;
	struct netif_list links; /* this tick's dump of the host namespace */
	uint64_t host_ino;
	uint64_t gen;
	struct podnet_ns *ns; /* unsorted: a node has few namespaces per tick to look up */
	size_t nns, capns;
	int *attached; /* host ifindexes with tally's tc programs */
	size_t nattached, capattached;
	bool resync; /* events were lost: reconcile the attachments from the dump */
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
	/* net__free detaches the devices' programs, or leaves them pinned for the next agent. */
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

static ssize_t attached__find(const struct podnet *p, int ifindex)
{
	for (size_t i = 0; i < p->nattached; i++)
		if (p->attached[i] == ifindex)
			return (ssize_t)i;
	return -1;
}

static int attach(struct podnet *p, int ifindex)
{
	int err;

	if (!p->net || attached__find(p, ifindex) >= 0)
		return 0;
	if (p->nattached == p->capattached) {
		size_t cap = p->capattached ? p->capattached * 2 : 16;
		int *a = realloc(p->attached, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		p->attached = a;
		p->capattached = cap;
	}
	err = net__attach_if(p->net, ifindex);
	/* Gone before we got to it: its DELLINK follows. */
	if (err == -ENODEV || err == -ENXIO)
		return 0;
	if (err)
		return err;
	p->attached[p->nattached++] = ifindex;
	return 0;
}

static void detach(struct podnet *p, int ifindex)
{
	ssize_t i = attached__find(p, ifindex);

	if (i < 0)
		return;
	net__detach_if(p->net, ifindex);
	p->attached[i] = p->attached[--p->nattached];
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
			const struct netif_link *l = netif_list__find(&p->links, p->attached[i]);

			if (!l || !is_pod_peer(l))
				detach(p, p->attached[i]);
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

	for (size_t i = 0; i < p->nns; i++) {
		struct podnet_ns *ns = &p->ns[i];

		if (ns->gen != p->gen) {
			ns__clear(ns); /* no container uses it any more */
			continue;
		}
		for (size_t j = 0; j < ns->n; j++) {
			struct podnet_if *f = &ns->ifs[j];
			const struct netif_link *l =
			    f->host_ifindex ? netif_list__find(&p->links, f->host_ifindex) : NULL;

			/* The peer must still be this interface's: ifindexes are reused. */
			f->has_stats = l && l->link_ifindex == f->ifindex;
			if (f->has_stats)
				stats__flip(&l->stats, &f->stats);
			f->has_proto = false;
			if (f->has_stats && p->net && attached__find(p, f->host_ifindex) >= 0) {
				int err = net__read_if(p->net, f->host_ifindex, &f->proto);

				/* No entry yet: no packet crossed it since tc was attached. */
				if (err == -ENOENT)
					memset(&f->proto, 0, sizeof(f->proto));
				f->has_proto = !err || err == -ENOENT;
			}
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
	return p->nattached;
}
