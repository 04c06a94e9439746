/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef __TALLY_COMMANDS_H
#define __TALLY_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One file per subcommand; each parses its own options and returns the exit status. */
int cmd_stats(int argc, char **argv);
int cmd_du(int argc, char **argv);
int cmd_agent(int argc, char **argv);

/*
 * Shared by the commands that load tally's BPF programs (stats, agent); in stats.c. Each logs
 * one line saying what is missing and how to fix it.
 */
struct collector;
struct cpu_opts;
/* --max-cgroups N into opts->max_cgroups. 0 or -EINVAL. */
int cmd__parse_max_cgroups(const char *arg, struct cpu_opts *opts);
/* --socket PATH into *path ("none": NULL). 0 or -EINVAL, logged. */
int cmd__parse_socket(const char *arg, const char **path);
/*
 * What `tally stats` prints for c's latest generation: the table, or (json) the stats
 * document; all adds every other cgroup. The agent's /v1/stats writes it with this too.
 */
void stats__print(FILE *f, const struct collector *c, bool json, bool all);
/* Find the cgroup2 mount (into root) and check for BTF. 0 or -errno. */
int cmd__preflight(char *root, size_t len);
/* collector__new, with the error (root? BTF?) logged; warns when the network path is
 * missing. cmd names the command in the hint ("tally -v <cmd>"). NULL and errno. */
struct collector *cmd__collector_new(const char *root, const struct cpu_opts *opts,
				     const char *cmd);

#define TALLY_VERSION "0.1.0"

#endif /* __TALLY_COMMANDS_H */
