// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Pure logic: rates, durations, the hierarchical roll-up. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cpu.h"
#include "discovery.h"
#include "model.h"
#include "rate.h"
#include "util.h"

#define S(ts, v) ((struct counter_sample){ .ts_ns = (ts), .value = (v), .valid = true })

Test(rate, first_sample_has_no_rate)
{
	struct counter_sample none = {}, cur = S(1000000000, 5);
	uint64_t r = 42;

	cr_expect_eq(rate__per_second(&none, &cur, 1, &r), -ENODATA);
	cr_expect_eq(r, 42, "output untouched without a rate");
}

Test(rate, one_core_is_1e9_nano_cores)
{
	struct counter_sample a = S(1000000000, 0), b = S(3000000000, 2000000000);
	uint64_t r;

	cr_assert_eq(rate__per_second(&a, &b, 1, &r), 0);
	cr_expect_eq(r, 1000000000ull);
}

Test(rate, bytes_per_second_fractional_interval)
{
	struct counter_sample a = S(0 + 1, 100), b = S(250000000 + 1, 1100);
	uint64_t r;

	cr_assert_eq(rate__per_second(&a, &b, 1, &r), 0);
	cr_expect_eq(r, 4000);
}

Test(rate, counter_backwards_is_a_reset)
{
	struct counter_sample a = S(1000, 500), b = S(2000, 100);
	uint64_t r = 7;

	cr_expect_eq(rate__per_second(&a, &b, 1, &r), -ENODATA);
	cr_expect_eq(r, 7);
}

Test(rate, clock_must_advance)
{
	struct counter_sample a = S(1000, 1), b = S(1000, 2), c = S(900, 3);
	uint64_t r;

	cr_expect_eq(rate__per_second(&a, &b, 1, &r), -ENODATA);
	cr_expect_eq(rate__per_second(&a, &c, 1, &r), -ENODATA);
}

Test(rate, no_overflow_on_large_deltas)
{
	/* 1000 cores for an hour, in ns: the intermediate product does not fit 64 bits. */
	uint64_t hour = 3600ull * 1000000000ull;
	struct counter_sample a = S(1, 0), b = S(1 + hour, hour * 1000);
	uint64_t r;

	cr_assert_eq(rate__per_second(&a, &b, 1, &r), 0);
	cr_expect_eq(r, 1000ull * 1000000000ull);
}

Test(util, durations)
{
	static const struct {
		const char *s;
		uint64_t ns;
	} ok[] = {
		{ "1", 1000000000ull },   { "1s", 1000000000ull }, { "500ms", 500000000ull },
		{ "0.25", 250000000ull }, { "2m", 120000000000ull }, { "1h", 3600000000000ull },
		{ "10us", 10000ull },     { "7ns", 7ull },          { "0", 0 },
	};
	static const char *const bad[] = { "", "-1", "+1", " 1", "1x", "1 s", "s", "nan", "inf",
					   "1e30h", "1ss" };
	uint64_t ns;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_expect_eq(duration__parse(ok[i].s, &ns), 0, "'%s' refused", ok[i].s);
		cr_expect_eq(ns, ok[i].ns, "'%s' gave %llu", ok[i].s, (unsigned long long)ns);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(duration__parse(bad[i], &ns), -EINVAL, "'%s' accepted", bad[i]);
}

Test(util, counts)
{
	uint32_t v;

	cr_expect_eq(count__parse("16384", &v), 0);
	cr_expect_eq(v, 16384);
	cr_expect_eq(count__parse("0", &v), -EINVAL);
	cr_expect_eq(count__parse("-1", &v), -EINVAL);
	cr_expect_eq(count__parse("4294967296", &v), -EINVAL);
	cr_expect_eq(count__parse("12k", &v), -EINVAL);
}

Test(cpustat, parse_usage)
{
	uint64_t v = 0;

	cr_expect_eq(cpustat__parse_usage("usage_usec 123\nuser_usec 100\nsystem_usec 23\n", &v), 0);
	cr_expect_eq(v, 123);
	cr_expect_eq(cpustat__parse_usage("user_usec 100\nusage_usec 77\n", &v), 0);
	cr_expect_eq(v, 77);
	cr_expect_eq(cpustat__parse_usage("user_usec 100\n", &v), -ENOENT);
	cr_expect_eq(cpustat__parse_usage("usage_usec x\n", &v), -EINVAL);
	cr_expect_eq(cpustat__parse_usage("", &v), -ENOENT);
}

/* Roll-up on the docker fixture tree with hand-made counters. */
Test(model, rollup_sums_descendants)
{
	struct cg_tree t = {};
	struct cpu_sample s = {};
	struct cpu_totals *tot;
	uint64_t sum_ns = 0, sum_sw = 0;

	cr_assert_eq(cg_tree__walk(&t, "tests/fixtures/cgroup/containerd-systemd"), 0);
	cr_assert_gt(t.n, 3);
	s.e = calloc(t.n + 1, sizeof(*s.e));
	/* Every node gets own counters; one extra entry for a cgroup not in the tree. */
	for (size_t i = 0; i < t.n; i++) {
		s.e[i] = (struct cpu_entry){ .cgid = t.nodes[i].id, .time_ns = 1000 * (i + 1),
					     .switches = i + 1 };
		sum_ns += 1000 * (i + 1);
		sum_sw += i + 1;
	}
	s.e[t.n] = (struct cpu_entry){ .cgid = UINT64_MAX, .time_ns = 1, .switches = 1 };
	s.n = t.n + 1;
	/* cpu_sample__find wants the entries sorted by id. */
	for (size_t i = 0; i < s.n; i++)
		for (size_t j = i + 1; j < s.n; j++)
			if (s.e[j].cgid < s.e[i].cgid) {
				struct cpu_entry x = s.e[i];

				s.e[i] = s.e[j];
				s.e[j] = x;
			}
	tot = calloc(t.n, sizeof(*tot));
	model__rollup_cpu(&t, &s, tot);
	cr_expect_eq(tot[0].time_ns, sum_ns, "root has everything but the unknown cgroup");
	cr_expect_eq(tot[0].switches, sum_sw);
	/* Each node = own + its children's totals. */
	for (size_t i = 0; i < t.n; i++) {
		uint64_t expect = cpu_sample__find(&s, t.nodes[i].id)->time_ns;

		for (size_t j = 0; j < t.n; j++)
			if (t.nodes[j].parent == (int32_t)i)
				expect += tot[j].time_ns;
		cr_expect_eq(tot[i].time_ns, expect, "node %s", t.nodes[i].path);
	}
	free(tot);
	free(s.e);
	cg_tree__free(&t);
}
