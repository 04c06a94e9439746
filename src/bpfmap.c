// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Per-CPU hash maps of u64 counters keyed by a u64, read whole. See bpfmap.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfmap.h"

/* Keys per batch lookup: large enough that a read is a few syscalls, small enough to keep. */
#define BPFMAP_CHUNK 4096

int bpfmap_reader__init(struct bpfmap_reader *r, int fd, int nr_cpus, uint32_t nr_counters,
			uint32_t max_entries, bool batch)
{
	memset(r, 0, sizeof(*r));
	if (nr_cpus <= 0 || !nr_counters || !max_entries)
		return -EINVAL;
	r->fd = fd;
	r->nr_cpus = nr_cpus;
	r->nr_counters = nr_counters;
	r->max_entries = max_entries;
	r->chunk = max_entries < BPFMAP_CHUNK ? max_entries : BPFMAP_CHUNK;
	r->batch = batch;
	r->keys = calloc(r->chunk, sizeof(*r->keys));
	r->vals = calloc((size_t)r->chunk * nr_cpus * nr_counters, sizeof(*r->vals));
	r->sum = calloc(nr_counters, sizeof(*r->sum));
	if (!r->keys || !r->vals || !r->sum) {
		bpfmap_reader__fini(r);
		return -ENOMEM;
	}
	return 0;
}

void bpfmap_reader__fini(struct bpfmap_reader *r)
{
	free(r->keys);
	free(r->vals);
	free(r->sum);
	r->keys = r->vals = r->sum = NULL;
}

void bpfmap__sum_percpu(const uint64_t *percpu, int nr_cpus, uint32_t n, uint64_t *sum)
{
	memset(sum, 0, n * sizeof(*sum));
	for (int cpu = 0; cpu < nr_cpus; cpu++)
		for (uint32_t i = 0; i < n; i++)
			sum[i] += percpu[(size_t)cpu * n + i];
}

int bpfmap__key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int reader__add(struct bpfmap_reader *r, uint64_t key, const uint64_t *percpu,
		       bpfmap_add_fn add, void *ctx)
{
	bpfmap__sum_percpu(percpu, r->nr_cpus, r->nr_counters, r->sum);
	return add(ctx, key, r->sum);
}

/*
 * Returns -EOPNOTSUPP, with nothing passed to add, when the kernel refuses the first batch:
 * it has no batch operations, or none for this map type.
 */
static int read_batch(struct bpfmap_reader *r, bpfmap_add_fn add, void *ctx)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t stride = (size_t)r->nr_cpus * r->nr_counters;
	uint64_t token = 0;
	bool first = true;
	int err;

	for (;;) {
		uint32_t count = r->chunk;

		err = bpf_map_lookup_batch(r->fd, first ? NULL : &token, &token, r->keys, r->vals,
					   &count, &opts);
		if (first && (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP))
			return -EOPNOTSUPP;
		if (err && err != -ENOENT)
			return err;
		for (uint32_t i = 0; i < count; i++) {
			int e = reader__add(r, r->keys[i], &r->vals[i * stride], add, ctx);

			if (e)
				return e;
		}
		if (err == -ENOENT)
			return 0;
		first = false;
	}
}

/*
 * Fallback for kernels without batch ops (5.6, commit cb4d03ab499d): one key at a time. The
 * keys first, then their values: get_next_key of a key deleted meanwhile starts again from the
 * first key, so a walk that looked up values as it went summed the entries before it twice.
 * Keys seen again are dropped; a map that keeps changing is walked a bounded number of steps.
 */
static int read_one_by_one(struct bpfmap_reader *r, bpfmap_add_fn add, void *ctx)
{
	uint64_t key, next, *keys = NULL;
	size_t n = 0, cap = 0, steps = 2 * (size_t)r->max_entries + 16;
	bool first = true;
	int err = 0;

	while (steps-- && !bpf_map_get_next_key(r->fd, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (n == cap) {
			uint64_t *k = realloc(keys, (cap = cap ? cap * 2 : 256) * sizeof(*k));

			if (!k) {
				free(keys);
				return -ENOMEM;
			}
			keys = k;
		}
		keys[n++] = key;
	}
	if (n)
		qsort(keys, n, sizeof(*keys), bpfmap__key_cmp);
	for (size_t i = 0; i < n && !err; i++) {
		if (i && keys[i] == keys[i - 1])
			continue;
		err = bpf_map_lookup_elem(r->fd, &keys[i], r->vals);
		if (err == -ENOENT) {
			err = 0; /* removed since */
			continue;
		}
		if (!err)
			err = reader__add(r, keys[i], r->vals, add, ctx);
	}
	free(keys);
	return err;
}

int bpfmap_reader__read(struct bpfmap_reader *r, bpfmap_add_fn add, void *ctx)
{
	int err;

	if (r->batch) {
		err = read_batch(r, add, ctx);
		if (err != -EOPNOTSUPP)
			return err;
		r->batch = false;
	}
	return read_one_by_one(r, add, ctx);
}

bool bpfmap__has_percpu_lookup(void)
{
	/* bpf_map_lookup_percpu_elem: 5.19, commit 07343110b293. Probed, never versioned. */
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT,
				       BPF_FUNC_map_lookup_percpu_elem, NULL) > 0;
}

int bpfmap__prune(int fd, size_t key_size, bool (*keep)(const void *key, void *ctx), void *ctx)
{
	uint64_t key[2], next[2];
	void *prev = NULL;

	if (key_size > sizeof(key))
		return -EINVAL;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		if (keep(key, ctx))
			continue;
		if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
			return -errno;
		prev = NULL;
	}
	return errno == ENOENT ? 0 : -errno;
}
