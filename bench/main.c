// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * build/bench-tally [cpu|disk|net|agent]: run one benchmark, or every one in turn (what `make
 * bench` does). Each prints a Markdown report on stdout, progress on stderr, and asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

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
