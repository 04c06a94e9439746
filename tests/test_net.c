// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network path against the kernel's own link counters: real namespaces, veth pairs,
 * cgroups and sockets, real BPF. Each pair carries only the test's traffic (net_helpers.h), so
 * what its host end counted is exactly what the test's sockets sent and received.
 *
 * The link counters of a veth count a frame as skb->len at transmit time: the L3 bytes plus a
 * 14-byte Ethernet header, one packet per skb it passes. Except with GRO on the receiving end:
 * then the pair counts in its NAPI poll, where the Ethernet header was already pulled (L3
 * bytes), one packet per segment before GRO merges them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>

#include <bpf/libbpf.h>
#include <bpf/bpf.h>

#include "net.h"
#include "net.skel.h"
#include "helpers.h"
#include "net_helpers.h"

#define ETH_HLEN    14
#define IP_UDP_HLEN (20 + 8)

static void fini(void)
{
	th_cleanup();
	nh_cleanup();
}

TestSuite(net, .fini = fini, .timeout = 60);

static struct tally_net *net_start(const struct net_opts *o)
{
	struct tally_net *n = net__open(th_cgroot(), o);

	cr_assert_not_null(n, "failed to load and attach the network path: %s", strerror(errno));
	return n;
}

/* A cgroup's own counters now; all zero when it has no entry. */
static struct net_cg_entry cg_read_id(struct tally_net *n, uint64_t cgid, bool *found)
{
	struct net_sample s = {};
	struct net_cg_entry out = {.cgid = cgid};
	const struct net_cg_entry *e;

	cr_assert_eq(net__read_cgroups(n, &s), 0);
	e = net_sample__find(&s, out.cgid);
	if (e)
		out = *e;
	if (found)
		*found = e != NULL;
	net_sample__free(&s);
	return out;
}

static struct net_cg_entry cg_read(struct tally_net *n, const char *cg, bool *found)
{
	return cg_read_id(n, th_cgroup_id(cg), found);
}

/* The test's top-level cgroup "<name>-<role>". */
static const char *test_cgroup(const char *name, const char *role)
{
	char cg_name[64];

	snprintf(cg_name, sizeof(cg_name), "%s-%s", name, role);
	return th_test_cgroup(cg_name);
}

/* One direction of a cgroup against the link: same packets, bytes plus l2 bytes per packet. */
static void expect_link(const char *what, uint64_t bytes, uint64_t packets, uint64_t link_bytes,
			uint64_t link_packets, unsigned l2)
{
	cr_expect_eq(packets, link_packets, "%s: %llu packets, the link %llu", what,
		     (unsigned long long)packets, (unsigned long long)link_packets);
	cr_expect_eq(bytes + l2 * packets, link_bytes, "%s: %llu bytes + %u x %llu, the link %llu",
		     what, (unsigned long long)bytes, l2, (unsigned long long)packets,
		     (unsigned long long)link_bytes);
}

/*
 * A client in the namespace and a server on the host end, each alone in its cgroup: the
 * client's tx and the server's rx are the host end's rx, and the other way round.
 */
static void expect_pair_matches_link(const struct net_cg_entry *cli, const struct net_cg_entry *srv,
				     const struct nh_stats *d, unsigned l2)
{
	expect_link("client tx", cli->tx_bytes, cli->tx_packets, d->rx_bytes, d->rx_packets, l2);
	expect_link("server rx", srv->rx_bytes, srv->rx_packets, d->rx_bytes, d->rx_packets, l2);
	expect_link("client rx", cli->rx_bytes, cli->rx_packets, d->tx_bytes, d->tx_packets, l2);
	expect_link("server tx", srv->tx_bytes, srv->tx_packets, d->tx_bytes, d->tx_packets, l2);
}

static uint64_t if_sum(const struct net_if_counter *c, enum net_if_dir dir, bool bytes)
{
	uint64_t sum = 0;

	for (int p = 0; p < NET_IF_PROTOS; p++)
		sum += bytes ? c->bytes[dir][p] : c->packets[dir][p];
	return sum;
}

Test(net, udp_counts_match_the_link)
{
	struct tally_net *n = net_start(NULL);
	const char *cli = th_test_cgroup("udp-cli"), *srv = th_test_cgroup("udp-srv");
	struct nh_udp_client c = {.cg = cli, .count = 1000, .size = 1200, .ack = 100};
	struct net_cg_entry ec, es;
	struct nh_stats before, after, d;
	struct nh_link l;

	nh_link_create(&l, "udp", "ud");
	nh_stats_read(l.host, &before);
	nh_udp_exchange(&l, srv, &c, 1);
	nh_stats_read(l.host, &after);
	d = nh_stats_delta(&after, &before);
	ec = cg_read(n, cli, NULL);
	es = cg_read(n, srv, NULL);
	/* Independent of the link: the payloads plus UDP and IPv4 headers. */
	cr_expect_eq(ec.tx_packets, 1000);
	cr_expect_eq(ec.tx_bytes, 1000 * (1200 + IP_UDP_HLEN));
	cr_expect_eq(ec.rx_packets, 1000);
	cr_expect_eq(ec.rx_bytes, 1000 * (100 + IP_UDP_HLEN));
	cr_expect_eq(es.rx_bytes, ec.tx_bytes);
	cr_expect_eq(es.tx_bytes, ec.rx_bytes);
	expect_pair_matches_link(&ec, &es, &d, ETH_HLEN);
	net__free(n);
}

/*
 * tc saw skbs (TCP, plus nothing else on this pair) where the link counted segments: at least
 * 100 segments more, 1 MiB being about 720 of them, means many skbs stood for several.
 */
static void expect_merged(const char *what, uint64_t tc_skbs, uint64_t link_segments)
{
	cr_expect_gt(link_segments, tc_skbs + 100, "no %s: tc saw %llu skbs, the link %llu", what,
		     (unsigned long long)tc_skbs, (unsigned long long)link_segments);
}

/*
 * TCP with TSO off on both ends of the pair: the stack builds GSO skbs (up to 64 KiB) that the
 * veth segments before they go out, so the link counts wire segments while the egress hooks
 * saw the large skbs. With gro, GRO on both ends too: the receiving socket gets merged skbs
 * and the link counts the segments before the merge (in NAPI, L3 bytes: see the top of this
 * file). tc on the host end proves the large skbs were there: it sees the download's GSO skbs
 * before segmentation, and the upload's merged skbs after GRO.
 */
static void tcp_without_tso(const char *name, const char *tag, bool gro)
{
	struct tally_net *n = net_start(NULL);
	struct nh_stats before, after, d;
	struct net_cg_entry ec, es;
	struct net_if_counter ic;
	const char *cli = test_cgroup(name, "cli"), *srv = test_cgroup(name, "srv");
	struct nh_link l;

	nh_link_create(&l, name, tag);
	/* veth also takes the NAPI path (GRO) only for senders without TSO. */
	nh_set_tso(NULL, l.host, false);
	nh_set_tso(l.ns, l.peer, false);
	if (gro) {
		nh_set_gro(NULL, l.host, true);
		nh_set_gro(l.ns, l.peer, true);
	}
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0);
	nh_stats_read(l.host, &before);
	nh_tcp_transfer(&l, srv, cli, 4 << 20, 1 << 20, NULL);
	nh_stats_read(l.host, &after);
	d = nh_stats_delta(&after, &before);
	ec = cg_read(n, cli, NULL);
	es = cg_read(n, srv, NULL);
	expect_pair_matches_link(&ec, &es, &d, gro ? 0 : ETH_HLEN);
	cr_assert_eq(net__read_if(n, l.host_ifindex, &ic), 0);
	if (gro)
		expect_merged("GRO", ic.packets[NET_IF_INGRESS][NET_IF_TCP], d.rx_packets);
	else
		expect_merged("GSO", ic.packets[NET_IF_EGRESS][NET_IF_TCP], d.tx_packets);
	net__free(n);
}

Test(net, tcp_gso_segmented_by_the_veth)
{
	tcp_without_tso("gso", "gs", false);
}

Test(net, tcp_gro_merged_on_receive)
{
	tcp_without_tso("gro", "gr", true);
}

/*
 * TSO on (the default): the veth passes GSO skbs whole and counts each as one packet, so the
 * link no longer counts segments. The truth for packets is then the socket's own TCP_INFO
 * (segments sent and received), and for bytes the link's L3 bytes plus the headers of every
 * segment beyond the first of each skb: IPv4 20 + TCP 20 + timestamps 12 when negotiated.
 */
Test(net, tcp_tso_counts_wire_segments)
{
	struct tally_net *n = net_start(NULL);
	const char *cli = th_test_cgroup("tso-cli"), *srv = th_test_cgroup("tso-srv");
	struct nh_stats before, after, d;
	struct net_cg_entry ec, es;
	struct tcp_info info;
	struct nh_link l;
	uint64_t hdr, l3;

	nh_link_create(&l, "tso", "ts");
	nh_stats_read(l.host, &before);
	nh_tcp_transfer(&l, srv, cli, 4 << 20, 0, &info);
	nh_stats_read(l.host, &after);
	d = nh_stats_delta(&after, &before);
	ec = cg_read(n, cli, NULL);
	es = cg_read(n, srv, NULL);
	cr_assert_lt(d.rx_packets * 4, info.tcpi_segs_out, "no TSO: the link counted %llu of %u",
		     (unsigned long long)d.rx_packets, info.tcpi_segs_out);
	cr_expect_eq(ec.tx_packets, info.tcpi_segs_out);
	cr_expect_eq(ec.rx_packets, info.tcpi_segs_in);
	hdr = 20 + 20 + (info.tcpi_options & TCPI_OPT_TIMESTAMPS ? 12 : 0);
	l3 = d.rx_bytes - ETH_HLEN * d.rx_packets;
	cr_expect_eq(ec.tx_bytes, l3 + (ec.tx_packets - d.rx_packets) * hdr,
		     "client tx %llu bytes, link L3 %llu + %llu extra segments x %llu",
		     (unsigned long long)ec.tx_bytes, (unsigned long long)l3,
		     (unsigned long long)(ec.tx_packets - d.rx_packets), (unsigned long long)hdr);
	cr_expect_eq(es.rx_packets, ec.tx_packets);
	cr_expect_eq(es.rx_bytes, ec.tx_bytes);
	/* The other way only ACKs: one segment per skb, the link's own count. */
	expect_link("client rx", ec.rx_bytes, ec.rx_packets, d.tx_bytes, d.tx_packets, ETH_HLEN);
	expect_link("server tx", es.tx_bytes, es.tx_packets, d.tx_bytes, d.tx_packets, ETH_HLEN);
	net__free(n);
}

Test(net, two_cgroups_in_one_netns_split)
{
	struct tally_net *n = net_start(NULL);
	const char *a = th_test_cgroup("split-a"), *b = th_test_cgroup("split-b");
	const char *srv = th_test_cgroup("split-srv");
	struct nh_udp_client c[2] = {
	    {.cg = a, .count = 300, .size = 1200, .ack = 64},
	    {.cg = b, .count = 700, .size = 500, .ack = 200},
	};
	struct nh_stats before, after, d;
	struct net_cg_entry e[2], es;
	struct nh_link l;

	nh_link_create(&l, "split", "sp");
	nh_stats_read(l.host, &before);
	nh_udp_exchange(&l, srv, c, 2);
	nh_stats_read(l.host, &after);
	d = nh_stats_delta(&after, &before);
	for (int i = 0; i < 2; i++) {
		e[i] = cg_read(n, c[i].cg, NULL);
		cr_expect_eq(e[i].tx_packets, c[i].count, "client %d", i);
		cr_expect_eq(e[i].tx_bytes, c[i].count * (c[i].size + IP_UDP_HLEN), "client %d", i);
		cr_expect_eq(e[i].rx_packets, c[i].count, "client %d", i);
		cr_expect_eq(e[i].rx_bytes, c[i].count * (c[i].ack + IP_UDP_HLEN), "client %d", i);
	}
	es = cg_read(n, srv, NULL);
	expect_link("clients tx", e[0].tx_bytes + e[1].tx_bytes, e[0].tx_packets + e[1].tx_packets,
		    d.rx_bytes, d.rx_packets, ETH_HLEN);
	expect_link("clients rx", e[0].rx_bytes + e[1].rx_bytes, e[0].rx_packets + e[1].rx_packets,
		    d.tx_bytes, d.tx_packets, ETH_HLEN);
	expect_link("server rx", es.rx_bytes, es.rx_packets, d.rx_bytes, d.rx_packets, ETH_HLEN);
	expect_link("server tx", es.tx_bytes, es.tx_packets, d.tx_bytes, d.tx_packets, ETH_HLEN);
	net__free(n);
}

/* The cgroup below the test's top-level one, named name. */
static const char *child_cgroup(const char *parent, const char *name)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "%s/%s", parent + strlen(th_cgroot()) + 1, name);
	return th_cgroup_create(rel);
}

Test(net, removed_cgroup_folds_into_parent)
{
	struct tally_net *n = net_start(NULL);
	const char *parent = th_test_cgroup("fold"), *srv = th_test_cgroup("fold-srv");
	const char *child = child_cgroup(parent, "c");
	struct nh_udp_client c = {.cg = child, .count = 50, .size = 1000, .ack = 10};
	uint64_t child_id = th_cgroup_id(child);
	struct net_cg_entry ec, ep;
	struct nh_link l;
	bool found;

	cr_assert(net__tracks_removal(n), "bpf_map_lookup_percpu_elem missing on this kernel");
	nh_link_create(&l, "fold", "fo");
	nh_udp_exchange(&l, srv, &c, 1);
	ec = cg_read(n, child, &found);
	cr_assert(found);
	cr_expect_eq(ec.tx_packets, 50);
	cg_read(n, parent, &found);
	cr_expect_not(found, "the parent has traffic of its own");
	cr_assert_eq(th_cgroup_remove(child), 0);
	ep = cg_read(n, parent, &found);
	cr_expect(found, "the child's counters did not reach the parent");
	cr_expect_eq(ep.tx_bytes, ec.tx_bytes);
	cr_expect_eq(ep.tx_packets, ec.tx_packets);
	cr_expect_eq(ep.rx_bytes, ec.rx_bytes);
	cr_expect_eq(ep.rx_packets, ec.rx_packets);
	cg_read_id(n, child_id, &found);
	cr_expect_not(found, "the removed cgroup kept its entry");
	net__free(n);
}

struct leaver {
	uint32_t ip;
	uint16_t port;
	int sock; /* AF_UNIX end the socket is handed over on */
};

/* Open a UDP socket here (so it belongs to this cgroup), send 10 datagrams, hand it over. */
static void leaver_run(void *arg)
{
	const struct leaver *lv = arg;
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_addr.s_addr = lv->ip, .sin_port = lv->port};
	char buf[100] = {0}, cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = buf, .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		_exit(20);
	for (int i = 0; i < 10; i++)
		if (send(fd, buf, sizeof(buf), 0) != sizeof(buf))
			_exit(21);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(lv->sock, &m, 0) != 1)
		_exit(22);
}

static int receive_fd(int sock)
{
	char buf[1], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	int fd;

	cr_assert_eq(recvmsg(sock, &m, 0), 1);
	cm = CMSG_FIRSTHDR(&m);
	cr_assert(cm && cm->cmsg_type == SCM_RIGHTS);
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * A socket outlives its cgroup (here handed to this process before its creator exited; in
 * real life a TCP close still in flight): its later packets go to the live parent, and the
 * removed cgroup's entry is not created again.
 */
Test(net, socket_outliving_its_cgroup_counts_in_parent)
{
	struct tally_net *n = net_start(NULL);
	const char *parent = th_test_cgroup("outlive"), *child = child_cgroup(parent, "c");
	uint64_t child_id = th_cgroup_id(child);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	struct net_cg_entry e;
	struct leaver lv;
	char buf[100] = {0};
	struct nh_link l;
	int rx, sp[2], fd;
	bool found;

	cr_assert(net__tracks_removal(n), "bpf_map_lookup_percpu_elem missing on this kernel");
	nh_link_create(&l, "outlive", "ol");
	/* A receiver on the host end, so the datagrams draw no ICMP errors back. */
	a.sin_addr.s_addr = l.host_ip;
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert(rx >= 0 && !bind(rx, (struct sockaddr *)&a, sizeof(a)) &&
		  !getsockname(rx, (struct sockaddr *)&a, &len));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp), 0);
	lv = (struct leaver){.ip = l.host_ip, .port = a.sin_port, .sock = sp[1]};
	nh_child_expect_ok(nh_child_start(child, l.ns, leaver_run, &lv), "leaver");
	fd = receive_fd(sp[0]);
	e = cg_read(n, child, NULL);
	cr_expect_eq(e.tx_packets, 10);
	cr_assert_eq(th_cgroup_remove(child), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(send(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cg_read_id(n, child_id, &found);
	cr_expect_not(found, "a packet of the removed cgroup re-created its entry");
	e = cg_read(n, parent, &found);
	cr_expect(found);
	cr_expect_eq(e.tx_packets, 15);
	cr_expect_eq(e.tx_bytes, 15 * (100 + IP_UDP_HLEN));
	close(fd);
	close(rx);
	close(sp[0]);
	close(sp[1]);
	net__free(n);
}

/* Whether a line of argv's output starts with first and has needle in it. */
static bool output_has(const char *const argv[], const char *first, const char *needle)
{
	static char out[1 << 16];
	char *line, *save = NULL;

	cr_assert_eq(nh_capture(argv, out, sizeof(out)), 0, "%s %s failed", argv[0], argv[1]);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, first, strlen(first)) && strstr(line, needle))
			return true;
	return false;
}

/*
 * Names as the kernel keeps them (15 characters): a prefix is what is safe to look for. Other
 * tests may have a tally loaded at the same time: look for this test's device, and for this
 * instance's program ids.
 */
#define TC_PROG_PREFIX	   "handle_tc_"
#define CGROUP_PROG_PREFIX "handle_cgroup_"

static bool tally_in_bpftool_net(const struct nh_link *l)
{
	const char *argv[] = {"bpftool", "net", "show", NULL};
	char dev[IF_NAMESIZE + 2];

	/* "tlyxx123h(7) clsact/ingress handle_tc_ingre:[42] id 42" */
	snprintf(dev, sizeof(dev), "%s(", l->host);
	return output_has(argv, dev, TC_PROG_PREFIX);
}

/* An instance's cgroup program ids, as bpftool prints them: first on their line, then blanks. */
struct cgroup_progs {
	char id[2][16];
};

static struct cgroup_progs cgroup_progs(struct tally_net *n)
{
	struct bpf_program *progs[2] = {net__skel(n)->progs.handle_cgroup_ingress,
					net__skel(n)->progs.handle_cgroup_egress};
	struct cgroup_progs p;

	for (int i = 0; i < 2; i++) {
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);

		cr_assert_eq(bpf_obj_get_info_by_fd(bpf_program__fd(progs[i]), &info, &len), 0);
		snprintf(p.id[i], sizeof(p.id[i]), "%u ", info.id);
	}
	return p;
}

/* Both of the instance's programs listed at the root (both: true), or either (both: false). */
static bool tally_in_bpftool_cgroup(const struct cgroup_progs *p, bool both)
{
	const char *argv[] = {"bpftool", "cgroup", "show", th_cgroot(), NULL};
	bool in = output_has(argv, p->id[0], CGROUP_PROG_PREFIX);
	bool eg = output_has(argv, p->id[1], CGROUP_PROG_PREFIX);

	return both ? in && eg : in || eg;
}

static bool tc_has(const char *what, const char *dev, const char *where, const char *needle)
{
	const char *argv[] = {"tc", what, "show", "dev", dev, where, NULL};

	return output_has(argv, "", needle);
}

/*
 * UDP, TCP and ICMP through the host end with tally attached: each protocol's share is the
 * traffic's own, and the split sums exactly to the link counters.
 */
static void expect_split_matches_link(struct tally_net *n, const struct nh_link *l,
				      const char *name)
{
	const char *cli = test_cgroup(name, "cli"), *srv = test_cgroup(name, "srv");
	struct nh_udp_client c = {.cg = cli, .count = 200, .size = 1200, .ack = 64};
	struct nh_stats before, after, d;
	struct net_if_counter ic;

	cr_assert_eq(net__read_if(n, l->host_ifindex, &ic), 0);
	cr_expect_eq(if_sum(&ic, NET_IF_INGRESS, false) + if_sum(&ic, NET_IF_EGRESS, false), 0);
	nh_stats_read(l->host, &before);
	nh_udp_exchange(l, srv, &c, 1);
	nh_tcp_transfer(l, srv, cli, 1 << 20, 256 << 10, NULL);
	nh_ping(l, cli, 10, 56);
	nh_stats_read(l->host, &after);
	d = nh_stats_delta(&after, &before);
	cr_assert_eq(net__read_if(n, l->host_ifindex, &ic), 0);
	cr_expect_eq(if_sum(&ic, NET_IF_INGRESS, false), d.rx_packets);
	cr_expect_eq(if_sum(&ic, NET_IF_INGRESS, true), d.rx_bytes);
	cr_expect_eq(if_sum(&ic, NET_IF_EGRESS, false), d.tx_packets);
	cr_expect_eq(if_sum(&ic, NET_IF_EGRESS, true), d.tx_bytes);
	for (int dir = 0; dir < NET_IF_DIRS; dir++) {
		cr_expect_eq(ic.packets[dir][NET_IF_UDP], 200, "dir %d", dir);
		cr_expect_eq(ic.packets[dir][NET_IF_ICMP], 10, "dir %d", dir);
		cr_expect_eq(ic.bytes[dir][NET_IF_ICMP], 10 * (ETH_HLEN + 20 + 8 + 56), "dir %d",
			     dir);
		cr_expect_gt(ic.packets[dir][NET_IF_TCP], 0, "dir %d", dir);
		cr_expect_eq(ic.packets[dir][NET_IF_OTHER], 0, "dir %d", dir);
	}
	cr_expect_eq(ic.bytes[NET_IF_INGRESS][NET_IF_UDP], 200 * (ETH_HLEN + IP_UDP_HLEN + 1200));
	cr_expect_eq(ic.bytes[NET_IF_EGRESS][NET_IF_UDP], 200 * (ETH_HLEN + IP_UDP_HLEN + 64));
}

Test(net, tcx_split_sums_to_the_link_and_leaves_nothing)
{
	struct tally_net *n = net_start(NULL);
	struct cgroup_progs progs = cgroup_progs(n);
	struct net_if_counter ic;
	struct nh_link l;

	nh_link_create(&l, "tcx", "tx");
	cr_assert_str_eq(net__tc_mode(n), "tcx");
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0);
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0, "attach is not idempotent");
	cr_expect(net__is_attached(n, l.host_ifindex));
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, false), 1);
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, true), 1);
	cr_expect(tally_in_bpftool_cgroup(&progs, true), "bpftool does not list tally at the root");
	expect_split_matches_link(n, &l, "tcx");
	cr_expect_eq(net__detach_if(n, l.host_ifindex), 0);
	cr_expect_eq(net__detach_if(n, l.host_ifindex), -ENOENT);
	cr_expect_eq(net__read_if(n, l.host_ifindex, &ic), -ENOENT);
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, false), 0);
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, true), 0);
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0);
	net__free(n);
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, false), 0);
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, true), 0);
	cr_expect_not(tally_in_bpftool_net(&l));
	cr_expect_not(tally_in_bpftool_cgroup(&progs, false), "tally still attached at the root");
}

Test(net, classic_tc_split_sums_to_the_link_and_leaves_nothing)
{
	struct net_opts o = {.force_tc_classic = true};
	struct tally_net *n = net_start(&o);
	struct cgroup_progs progs = cgroup_progs(n);
	struct nh_link l;

	nh_link_create(&l, "classic", "cl");
	cr_assert_str_eq(net__tc_mode(n), "tc");
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0);
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0, "attach is not idempotent");
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, false), 0);
	cr_expect(tally_in_bpftool_net(&l), "bpftool does not list tally's filters");
	cr_expect(tc_has("qdisc", l.host, NULL, "clsact"));
	expect_split_matches_link(n, &l, "classic");
	net__free(n);
	cr_expect_not(tally_in_bpftool_net(&l), "a filter of tally's is left");
	cr_expect_not(tally_in_bpftool_cgroup(&progs, false), "tally still attached at the root");
	cr_expect_not(tc_has("qdisc", l.host, NULL, "clsact"), "tally's clsact qdisc is left");
}

/*
 * Another party's filter, ahead of tally's: u32, one of the two classifiers this kernel has
 * built in (no matchall, no gact). Its key never matches an IP header (version 13), so it
 * lets every packet on to the next filter, tally's, as a counting or marking filter would.
 */
static void other_filter_add(const char *dev, const char *where)
{
	const char *qdisc[] = {"tc", "qdisc", "add", "dev", dev, "clsact", NULL};
	const char *filter[] = {"tc",	"filter",     "add",	    "dev", dev,	  where,
				"prio", "1",	      "protocol",   "all", "u32", "match",
				"u32",	"0xdeadbeef", "0xffffffff", "at",  "0",	  NULL};

	/* where NULL: the clsact qdisc alone. */
	cr_assert_eq(nh_run(where ? filter : qdisc), 0, "tc add on %s %s failed", dev,
		     where ? where : "clsact");
}

/* After tally's net__free: its filter is gone, the other party's qdisc and filter are not. */
static void expect_only_tally_gone(const struct nh_link *l, const char *where)
{
	cr_expect_not(tally_in_bpftool_net(l), "a filter of tally's is left");
	cr_expect(tc_has("qdisc", l->host, NULL, "clsact"), "the qdisc is gone");
	cr_expect(tc_has("filter", l->host, where, "deadbeef"), "the other party's filter is gone");
}

/* Another party's qdisc and filter were there first: both stay, only tally's filter goes. */
Test(net, classic_tc_keeps_a_filter_that_was_there)
{
	struct net_opts o = {.force_tc_classic = true};
	struct tally_net *n = net_start(&o);
	struct nh_link l;

	nh_link_create(&l, "keep", "kp");
	other_filter_add(l.host, NULL);
	other_filter_add(l.host, "ingress");
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0);
	expect_split_matches_link(n, &l, "keep");
	net__free(n);
	expect_only_tally_gone(&l, "ingress");
}

/* tally created the qdisc, then someone added a filter to it: the qdisc stays for them. */
Test(net, classic_tc_leaves_its_qdisc_to_a_later_filter)
{
	struct net_opts o = {.force_tc_classic = true};
	struct tally_net *n = net_start(&o);
	struct nh_link l;

	nh_link_create(&l, "later", "lt");
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0);
	other_filter_add(l.host, "egress");
	net__free(n);
	expect_only_tally_gone(&l, "egress");
}

/*
 * A tally that did not exit cleanly leaves its classic filters behind; the next one takes
 * them over instead of failing on them, and still leaves nothing behind.
 */
Test(net, classic_tc_takes_over_a_stale_filter)
{
	struct net_opts o = {.force_tc_classic = true};
	struct tally_net *old = net_start(&o), *n = net_start(&o);
	struct nh_udp_client c = {.count = 20, .size = 300, .ack = 30};
	struct nh_stats before, after, d;
	struct net_if_counter ic;
	struct nh_link l;

	nh_link_create(&l, "stale", "st");
	c.cg = th_test_cgroup("stale-cli");
	cr_assert_eq(net__attach_if(old, l.host_ifindex), 0);
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0);
	nh_stats_read(l.host, &before);
	nh_udp_exchange(&l, th_test_cgroup("stale-srv"), &c, 1);
	nh_stats_read(l.host, &after);
	d = nh_stats_delta(&after, &before);
	cr_assert_eq(net__read_if(n, l.host_ifindex, &ic), 0);
	cr_expect_eq(if_sum(&ic, NET_IF_INGRESS, false), d.rx_packets);
	cr_expect_eq(if_sum(&ic, NET_IF_EGRESS, true), d.tx_bytes);
	net__free(n);
	net__free(old);
	cr_expect_not(tally_in_bpftool_net(&l), "a filter of tally's is left");
	cr_expect_not(tc_has("qdisc", l.host, NULL, "clsact"), "tally's clsact qdisc is left");
}

static void device_deleted_while_attached(const struct net_opts *o)
{
	struct tally_net *n = net_start(o);
	struct net_if_counter ic;
	struct nh_link l;

	nh_link_create(&l, o->force_tc_classic ? "gone-tc" : "gone-tcx",
		       o->force_tc_classic ? "gc" : "gx");
	cr_assert_eq(net__attach_if(n, l.host_ifindex), 0);
	nh_link_delete(&l);
	cr_expect_eq(net__detach_if(n, l.host_ifindex), 0);
	cr_expect_not(net__is_attached(n, l.host_ifindex));
	cr_expect_eq(net__read_if(n, l.host_ifindex, &ic), -ENOENT);
	net__free(n);
	cr_expect_not(tally_in_bpftool_net(&l));
}

Test(net, tcx_device_deleted_while_attached)
{
	struct net_opts o = {0};

	device_deleted_while_attached(&o);
}

Test(net, classic_tc_device_deleted_while_attached)
{
	struct net_opts o = {.force_tc_classic = true};

	device_deleted_while_attached(&o);
}

/* Two tallies at once: both cgroup links at the root and both tcx links on a device count. */
Test(net, two_instances_coexist)
{
	struct tally_net *n[2] = {net_start(NULL), net_start(NULL)};
	const char *cli = th_test_cgroup("both-cli"), *srv = th_test_cgroup("both-srv");
	struct nh_udp_client c = {.cg = cli, .count = 100, .size = 800, .ack = 80};
	struct nh_stats before, after, d;
	struct net_if_counter ic;
	struct cgroup_progs progs;
	struct net_cg_entry e;
	struct nh_link l;

	nh_link_create(&l, "both", "bo");
	for (int i = 0; i < 2; i++)
		cr_assert_eq(net__attach_if(n[i], l.host_ifindex), 0);
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, false), 2);
	nh_stats_read(l.host, &before);
	nh_udp_exchange(&l, srv, &c, 1);
	nh_stats_read(l.host, &after);
	d = nh_stats_delta(&after, &before);
	for (int i = 0; i < 2; i++) {
		e = cg_read(n[i], cli, NULL);
		expect_link("client tx", e.tx_bytes, e.tx_packets, d.rx_bytes, d.rx_packets,
			    ETH_HLEN);
		expect_link("client rx", e.rx_bytes, e.rx_packets, d.tx_bytes, d.tx_packets,
			    ETH_HLEN);
		cr_assert_eq(net__read_if(n[i], l.host_ifindex, &ic), 0);
		cr_expect_eq(if_sum(&ic, NET_IF_INGRESS, true), d.rx_bytes, "instance %d", i);
		cr_expect_eq(if_sum(&ic, NET_IF_EGRESS, true), d.tx_bytes, "instance %d", i);
	}
	progs = cgroup_progs(n[1]);
	net__free(n[0]);
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, false), 1);
	cr_expect(tally_in_bpftool_cgroup(&progs, true), "freeing one tally detached the other");
	net__free(n[1]);
	cr_expect_eq(nh_tcx_prog_count(l.host_ifindex, false), 0);
}
