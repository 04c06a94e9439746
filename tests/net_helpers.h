/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Network fixtures on the real kernel: network namespaces and veth pairs named after the test
 * and the pid, traffic of known shape from children placed in a cgroup and a namespace, and
 * the kernel's own link counters as the truth. Everything is removed by nh_cleanup(), which
 * the suite's .fini runs even when an assertion failed; a report hook sweeps what a crashed
 * test left.
 *
 * Each veth pair carries nothing but the test's traffic: IPv6 is off on both ends (no
 * neighbour discovery, no router solicitations) and both ends have permanent neighbour
 * entries for each other (no ARP).
 */
#ifndef __TALLY_TESTS_NET_HELPERS_H
#define __TALLY_TESTS_NET_HELPERS_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/tcp.h>

/* A veth pair: one end in this (the host's) namespace, the other in netns ns. */
struct nh_link {
	char ns[64];		/* "tally-test-<name>-<pid>" */
	char host[IF_NAMESIZE]; /* host-side device */
	char peer[IF_NAMESIZE]; /* device inside ns */
	int host_ifindex;
	uint32_t host_ip, peer_ip; /* network order */
};

/* A device's link counters (/sys/class/net/<dev>/statistics). */
struct nh_stats {
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};

/*
 * Create netns "tally-test-<name>-<pid>" and a veth pair into it, addressed host .1 and peer
 * .2 of a /30, both up. tag (two characters) names the devices: "tly<tag><pid>h" and "...n".
 */
void nh_link_create(struct nh_link *l, const char *name, const char *tag);
/* Delete the pair (its host end) now, as if its container went away. */
void nh_link_delete(struct nh_link *l);

/* Offloads (legacy ethtool ioctls) of dev, inside netns ns or here when ns is NULL. */
void nh_set_tso(const char *ns, const char *dev, bool on);
void nh_set_gro(const char *ns, const char *dev, bool on);

void nh_stats_read(const char *dev, struct nh_stats *s);
/* after - before, field by field. */
struct nh_stats nh_stats_delta(const struct nh_stats *after, const struct nh_stats *before);

/* Fork a child in cgroup cg (absolute) and netns ns (NULL: this one) that runs fn(arg). */
pid_t nh_child_start(const char *cg, const char *ns, void (*fn)(void *), void *arg);
/*
 * A long-lived "container" process in cgroup cg and netns ns (NULL: this one), returned once
 * it is in both (it says so through a pipe), so a lookup cannot see it half set up. Stopped by
 * th_cleanup.
 */
pid_t nh_sleeper_start(const char *cg, const char *ns);
/* Wait for a child started here; asserts that it exited with status 0. */
void nh_child_expect_ok(pid_t pid, const char *what);

/*
 * TCP: a server in cgroup srv_cg on the host end, a client in cgroup cli_cg inside l->ns.
 * The client sends up bytes and closes its side; the server reads them all, sends down bytes
 * and closes with SO_LINGER, so its close returns only once the client's last ACK was
 * processed: when both children have exited, every packet of the connection has been
 * through both sockets. client_info is the client's TCP_INFO after the handshake's end.
 */
void nh_tcp_transfer(const struct nh_link *l, const char *srv_cg, const char *cli_cg, size_t up,
		     size_t down, struct tcp_info *client_info);

/* One UDP client: count datagrams of size bytes, each answered by ack bytes, in lockstep. */
struct nh_udp_client {
	const char *cg; /* absolute cgroup path */
	unsigned count;
	size_t size, ack;
};
/* UDP: a server in srv_cg on the host end, the clients in their cgroups inside l->ns, at once. */
void nh_udp_exchange(const struct nh_link *l, const char *srv_cg, const struct nh_udp_client *c,
		     int n);

/* ICMP: count echo requests of payload bytes from cgroup cg inside l->ns, each answered. */
void nh_ping(const struct nh_link *l, const char *cg, unsigned count, size_t payload);

/* Run argv (NULL-ended), output discarded. Its exit status, or -1 when it did not exit. */
int nh_run(const char *const argv[]);
/* Same, its standard output (truncated to size - 1) into buf. */
int nh_capture(const char *const argv[], char *buf, size_t size);

/* How many programs are attached through tcx to one direction of a device (the kernel says). */
int nh_tcx_prog_count(int ifindex, bool egress);

/* Remove every netns and device this process created. */
void nh_cleanup(void);

#endif
