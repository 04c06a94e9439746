/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What the benchmarks share: the entry points main.c dispatches to, and small measuring helpers. */
#ifndef __TALLY_BENCH_H
#define __TALLY_BENCH_H

#include <stdint.h>

int bench_cpu(int argc, char **argv);
int bench_disk(int argc, char **argv);
int bench_net(int argc, char **argv);
int bench_agent(int argc, char **argv);

/* The median of v (n > 0 values; v is sorted in place, so v[n - 1] is then the max). */
uint64_t bench__median(uint64_t *v, int n);
/* A BPF program's bpf_stats so far: run time and runs. 0 or -errno. */
int bench__prog_stats(int fd, uint64_t *run_ns, uint64_t *runs);

#endif /* __TALLY_BENCH_H */
