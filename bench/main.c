// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * build/bench-tally [cpu|disk|net|agent]: run one benchmark, or every one in turn (what `make
 * bench` does). Each prints a Markdown report on stdout, progress on stderr, and asserts nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "bench.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench__median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

int bench__prog_stats(int fd, uint64_t *run_ns, uint64_t *runs)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*run_ns = info.run_time_ns;
	*runs = info.run_cnt;
	return 0;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} benches[] = {
    {"cpu", bench_cpu},
    {"disk", bench_disk},
    {"net", bench_net},
    {"agent", bench_agent},
};

#define N_BENCHES (sizeof(benches) / sizeof(benches[0]))

int main(int argc, char **argv)
{
	int err = 0;

	if (argc < 2) {
		for (size_t i = 0; i < N_BENCHES; i++) {
			if (i)
				printf("\n");
			fflush(stdout);
			err = benches[i].run(argc, argv) ?: err;
		}
		return err;
	}
	for (size_t i = 0; i < N_BENCHES; i++)
		if (!strcmp(argv[1], benches[i].name))
			return benches[i].run(argc - 1, argv + 1);
	fprintf(stderr, "usage: %s [", argv[0]);
	for (size_t i = 0; i < N_BENCHES; i++)
		fprintf(stderr, "%s%s", i ? "|" : "", benches[i].name);
	fprintf(stderr, "]   (no argument: all of them, in this order)\n");
	return 2;
}
