// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network path, kernel side: bytes and packets per cgroup v2 id of the socket that sent
 * or received them, and per protocol on the host-side devices tally attaches to.
 *
 * Per cgroup (cgroup_skb programs, attached once at the cgroup v2 root as links, so they run
 * for every socket of every cgroup next to whatever else is attached there): every skb that
 * passes the socket layer's cgroup hooks is charged to the cgroup its socket was created in.
 * That is IPv4 and IPv6 traffic of full sockets:
 * - bytes are L3 bytes as they are on the wire: the IP header and all above it, no
 *   link-layer header. An skb the stack has not segmented yet (GSO, on egress) or has merged
 *   (GRO, on ingress) counts as the segments it stands for: gso_segs packets, and skb->len
 *   plus the IP and TCP (or UDP) headers of every segment but the first. A link whose
 *   counters include a 14-byte Ethernet header per frame then shows bytes + 14 * packets
 *   when one cgroup alone sends over it;
 * - not counted: what has no full socket (ARP, ICMP errors and TCP resets the kernel sends
 *   on its own, segments of TIME_WAIT sockets, forwarded traffic) and what the kernel
 *   splits after the hook: an IP datagram larger than the path MTU counts as one packet,
 *   not as its fragments.
 * Only a cgroup's own sockets are counted here; parents are summed in userspace, as the CPU
 * path does.
 *
 * Per device (tc programs on the host-side veths tally attaches to): every skb, by protocol
 * and direction, counted as the link counters count (one packet per skb, skb->len bytes,
 * Ethernet header included), so the breakdown sums to them.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tally/net.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* uapi values vmlinux.h does not carry (they are macros). */
#define ETH_P_IP       0x0800
#define ETH_P_IPV6     0x86DD
#define IPPROTO_ICMPV6 58
#define TC_ACT_UNSPEC  (-1) /* and TCX_NEXT: the same value, "let the next program decide" */

/* Set by userspace before load. */
const volatile __u32 nr_cpus = 1;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TALLY_NET_DEFAULT_MAX_CGROUPS); /* resized by userspace before load */
	__type(key, __u64);
	__type(value, struct net_counter);
} cg_net SEC(".maps");

/*
 * Recently removed cgroups: id -> parent id. A socket can outlive its cgroup (a TCP close
 * still in flight when the runtime removes the container's cgroup), and its packets then
 * go to the nearest live ancestor, where the removal handler folded the cgroup, instead of
 * re-creating an entry nobody would delete. LRU: only the recent removals matter.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TALLY_NET_DEFAULT_MAX_CGROUPS); /* resized by userspace before load */
	__type(key, __u64);
	__type(value, __u64);
} cg_gone SEC(".maps");

/* Entries are created by userspace when it attaches to a device; here they are only found. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TALLY_NET_DEFAULT_MAX_IFACES); /* resized by userspace before load */
	__type(key, __u32);
	__type(value, struct net_if_counter);
} if_net SEC(".maps");

struct net_drops drops = {};

/* A removed cgroup's nearest live ancestor (the id itself when it was not removed). */
static __always_inline __u64 live_cgid(__u64 cgid)
{
	for (int i = 0; i < TALLY_NET_MAX_GONE_DEPTH; i++) {
		__u64 *parent = bpf_map_lookup_elem(&cg_gone, &cgid);

		if (!parent)
			break;
		cgid = *parent;
	}
	return cgid;
}

static __always_inline void cg_add(__u64 cgid, const struct net_counter *d)
{
	struct net_counter *c;

	c = bpf_map_lookup_elem(&cg_net, &cgid);
	if (!c) {
		/* The first skb of this cgroup, or a straggler of a removed one. */
		cgid = live_cgid(cgid);
		c = bpf_map_lookup_elem(&cg_net, &cgid);
	}
	if (!c) {
		if (!bpf_map_update_elem(&cg_net, &cgid, d, BPF_NOEXIST))
			return;
		/* -EEXIST: another CPU created it first; this CPU's slot starts at zero. */
		c = bpf_map_lookup_elem(&cg_net, &cgid);
		if (!c) {
			__sync_fetch_and_add(&drops.cg_updates, 1);
			__sync_fetch_and_add(&drops.cg_bytes, d->rx_bytes + d->tx_bytes);
			return;
		}
	}
	c->rx_bytes += d->rx_bytes;
	c->rx_packets += d->rx_packets;
	c->tx_bytes += d->tx_bytes;
	c->tx_packets += d->tx_packets;
}

/*
 * The L4 protocol and the IP header's length, from the network header on (both hooks have it
 * set, whatever the link layer). -1 for what is neither IPv4 nor IPv6.
 */
static __always_inline int parse_l3(struct __sk_buff *skb, __u8 *proto, __u32 *l3_len)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes_relative(skb, 0, &ip, sizeof(ip), BPF_HDR_START_NET))
			return -1;
		*proto = ip.protocol;
		*l3_len = ip.ihl * 4;
		return 0;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes_relative(skb, 0, &ip6, sizeof(ip6), BPF_HDR_START_NET))
			return -1;
		/* Extension headers are not followed: GSO skbs are built without them. */
		*proto = ip6.nexthdr;
		*l3_len = sizeof(ip6);
		return 0;
	}
	return -1;
}

/* The headers every segment of a GSO/GRO skb repeats: IP and TCP (options included) or UDP. */
static __always_inline __u32 segment_header_len(struct __sk_buff *skb)
{
	__u32 l3_len = 0;
	__u8 proto = 0, doff;

	if (parse_l3(skb, &proto, &l3_len))
		return 0;
	if (proto == IPPROTO_UDP)
		return l3_len + sizeof(struct udphdr);
	if (proto != IPPROTO_TCP)
		return l3_len;
	/* The data offset, in 32-bit words, is the high nibble of the TCP header's 13th byte. */
	if (bpf_skb_load_bytes_relative(skb, l3_len + 12, &doff, 1, BPF_HDR_START_NET))
		return l3_len;
	return l3_len + (doff >> 4) * 4;
}

static __always_inline void count_cgroup_skb(struct __sk_buff *skb, bool egress)
{
	__u64 cgid = bpf_skb_cgroup_id(skb), bytes = skb->len;
	__u32 segs = skb->gso_segs;
	struct net_counter d = {};

	if (!cgid)
		return;
	if (segs > 1)
		bytes += (__u64)(segs - 1) * segment_header_len(skb);
	else
		segs = 1;
	if (egress) {
		d.tx_bytes = bytes;
		d.tx_packets = segs;
	} else {
		d.rx_bytes = bytes;
		d.rx_packets = segs;
	}
	cg_add(cgid, &d);
}

SEC("cgroup_skb/ingress")
int handle_cgroup_ingress(struct __sk_buff *skb)
{
	count_cgroup_skb(skb, false);
	return 1; /* allow: tally only counts */
}

SEC("cgroup_skb/egress")
int handle_cgroup_egress(struct __sk_buff *skb)
{
	count_cgroup_skb(skb, true);
	return 1;
}

static __always_inline int count_if_skb(struct __sk_buff *skb, enum net_if_dir dir)
{
	__u32 ifindex = skb->ifindex, l3_len = 0;
	enum net_if_proto p = NET_IF_OTHER;
	struct net_if_counter *c;
	__u8 proto = 0;

	c = bpf_map_lookup_elem(&if_net, &ifindex);
	if (!c) {
		__sync_fetch_and_add(&drops.if_misses, 1);
		return TC_ACT_UNSPEC;
	}
	if (!parse_l3(skb, &proto, &l3_len)) {
		if (proto == IPPROTO_TCP)
			p = NET_IF_TCP;
		else if (proto == IPPROTO_UDP)
			p = NET_IF_UDP;
		else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
			p = NET_IF_ICMP;
	}
	c->bytes[dir][p] += skb->len;
	c->packets[dir][p] += 1;
	return TC_ACT_UNSPEC;
}

SEC("tc")
int handle_tc_ingress(struct __sk_buff *skb)
{
	return count_if_skb(skb, NET_IF_INGRESS);
}

SEC("tc")
int handle_tc_egress(struct __sk_buff *skb)
{
	return count_if_skb(skb, NET_IF_EGRESS);
}

/*
 * A removed cgroup's counters move into its parent, so a parent keeps the traffic of
 * children that are gone and the map does not grow under churn; the cgroup is remembered in
 * cg_gone for the packets of sockets that outlive it (filled before the entry goes, so such a
 * packet finds one or the other). Unlike a task, a socket can still be sending as its cgroup
 * goes: an skb added on another CPU while the sum is read is lost, a rare few bytes. Needs
 * bpf_map_lookup_percpu_elem (5.19); userspace loads it only where that exists.
 */
SEC("raw_tp/cgroup_rmdir")
int BPF_PROG(handle_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	struct net_counter sum = {}, *c;
	__u64 id, parent;

	/* The tracepoint fires for v1 hierarchies too; their ids are another namespace. */
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0;
	id = BPF_CORE_READ(cgrp, kn, id);
	parent = BPF_CORE_READ(cgrp, self.parent, cgroup, kn, id);
	if (!parent)
		return 0;
	bpf_map_update_elem(&cg_gone, &id, &parent, BPF_ANY);
	for (__u32 cpu = 0; cpu < TALLY_NET_MAX_CPUS && cpu < nr_cpus; cpu++) {
		c = bpf_map_lookup_percpu_elem(&cg_net, &id, cpu);
		if (c) {
			sum.rx_bytes += c->rx_bytes;
			sum.rx_packets += c->rx_packets;
			sum.tx_bytes += c->tx_bytes;
			sum.tx_packets += c->tx_packets;
		}
	}
	if (sum.rx_packets || sum.tx_packets)
		cg_add(parent, &sum);
	bpf_map_delete_elem(&cg_net, &id);
	return 0;
}
