/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Reading per-CPU hash maps whose key is a u64 (a cgroup v2 id) and whose value is a fixed
 * number of u64 counters: every key with its counters summed over CPUs, in batches where the
 * kernel has them. The CPU and network paths both keep their per-cgroup counters this way.
 */
#ifndef __TALLY_BPFMAP_H
#define __TALLY_BPFMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpfmap_reader {
	int fd;
	int nr_cpus;
	uint32_t nr_counters; /* u64 counters in one CPU's value */
	uint32_t max_entries; /* the map's */
	uint32_t chunk;	      /* keys per batch lookup */
	bool batch;	      /* batch lookups in use; cleared when the kernel refuses them */
	/* buffers, reused between reads */
	uint64_t *keys; /* chunk */
	uint64_t *vals; /* chunk * nr_cpus * nr_counters */
	uint64_t *sum;	/* nr_counters */
};

/*
 * Called once per key with its counters summed over CPUs, in the value's field order. A
 * non-zero return stops the read and is returned by it.
 */
typedef int (*bpfmap_add_fn)(void *ctx, uint64_t key, const uint64_t *sum);

/*
 * Set up a reader of the map at fd (max_entries bounds the batch size). batch: try batch
 * lookups first (false forces the fallback, for tests). 0 or -errno.
 */
int bpfmap_reader__init(struct bpfmap_reader *r, int fd, int nr_cpus, uint32_t nr_counters,
			uint32_t max_entries, bool batch);
/* Frees the buffers; fine on a zeroed reader. */
void bpfmap_reader__fini(struct bpfmap_reader *r);
/* Every key once (in no particular order), through add(ctx, key, sum). 0 or -errno. */
int bpfmap_reader__read(struct bpfmap_reader *r, bpfmap_add_fn add, void *ctx);

/*
 * qsort/bsearch order of what a read yields, by key: for arrays of structs whose first member
 * is the uint64_t key (a pointer to a struct is a pointer to its first member).
 */
int bpfmap__key_cmp(const void *a, const void *b);

/* Sum nr_cpus rows of n u64 counters (one map value as a lookup returns it) into sum[n]. */
void bpfmap__sum_percpu(const uint64_t *percpu, int nr_cpus, uint32_t n, uint64_t *sum);

/*
 * Whether BPF programs can read another CPU's slot of a per-CPU map
 * (bpf_map_lookup_percpu_elem), which the cgroup removal handlers need.
 */
bool bpfmap__has_percpu_lookup(void);

/*
 * Delete the entries of the map at fd (keys of key_size bytes, at most 16) for which
 * keep(key, ctx) says false. For rare deletions (start-up pruning): the walk starts over after
 * each one, since a deleted key is no position to continue from. 0 or -errno.
 */
int bpfmap__prune(int fd, size_t key_size, bool (*keep)(const void *key, void *ctx), void *ctx);

#endif /* __TALLY_BPFMAP_H */
