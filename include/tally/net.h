/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The network path's ABI between bpf/net.bpf.c and src/net.c: plain fixed-width structs,
 * no pointers, so both sides agree whatever the compiler.
 */
#ifndef __TALLY_NET_H
#define __TALLY_NET_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Default number of cgroups the per-CPU socket counter map holds. */
#define TALLY_NET_DEFAULT_MAX_CGROUPS 16384
/* Default number of devices the per-CPU device counter map holds. */
#define TALLY_NET_DEFAULT_MAX_IFACES 1024
/* Upper bound of CPUs the removal handler folds over (bounded loop for the verifier). */
#define TALLY_NET_MAX_CPUS 1024
/*
 * Levels of removed cgroups a straggler packet climbs to find a live one: a socket can
 * outlive its cgroup, and the cgroup's parents can go after it.
 */
#define TALLY_NET_MAX_GONE_DEPTH 8

/*
 * Value of cg_net, per CPU, keyed by the cgroup v2 id of the socket an skb belongs to: what
 * that cgroup's own sockets sent and received. Bytes are L3 bytes as they are on the wire
 * (IP header included, no link-layer header); a GSO or GRO skb counts as the segments it
 * stands for. See bpf/net.bpf.c for exactly what is counted.
 */
struct net_counter {
	__u64 rx_bytes;
	__u64 rx_packets;
	__u64 tx_bytes;
	__u64 tx_packets;
};

/* Directions of a device's counters, as the device sees them (the link counters' rx/tx). */
enum net_if_dir {
	NET_IF_INGRESS = 0, /* received by the device: its rx_* counters */
	NET_IF_EGRESS = 1,  /* sent by the device: its tx_* counters */
	NET_IF_DIRS = 2,
};

/* Protocols a device's counters are split by. */
enum net_if_proto {
	NET_IF_TCP = 0,
	NET_IF_UDP = 1,
	NET_IF_ICMP = 2,  /* ICMP and ICMPv6 */
	NET_IF_OTHER = 3, /* anything else: ARP, IPv6 extension headers, IGMP, ... */
	NET_IF_PROTOS = 4,
};

/*
 * Value of if_net, per CPU, keyed by ifindex (__u32): what tc saw on a device tally attached
 * to. Counted as the link counters count: one packet per skb, skb->len bytes (Ethernet
 * header included).
 */
struct net_if_counter {
	__u64 bytes[NET_IF_DIRS][NET_IF_PROTOS];
	__u64 packets[NET_IF_DIRS][NET_IF_PROTOS];
};

/* Global counters in .bss: rare events, updated atomically. */
struct net_drops {
	__u64 cg_updates; /* skbs not counted because cg_net was full */
	__u64 cg_bytes;	  /* bytes those skbs carried */
	__u64 if_misses;  /* skbs on a device with no if_net entry (detached as they passed) */
};

#endif /* __TALLY_NET_H */
