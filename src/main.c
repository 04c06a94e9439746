// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* tally: a table of subcommands, bpftool-style. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} cmds[] = {
    {"stats", cmd_stats, "print per-container CPU usage of this node"},
    {"du", cmd_du, "print (and with --watch, follow) the disk usage of directories"},
    {"agent", cmd_agent, "serve every container's stats over HTTP (Prometheus, JSON)"},
    {"version", cmd_version, "print tally's version"},
    {"help", cmd_help, "print this help"},
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tally [-v] COMMAND [OPTIONS]\n"
	    "       tally COMMAND --help\n\n"
	    "tally is a per-container stats agent: CPU from BPF on the scheduler, per cgroup.\n\n"
	    "Commands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\nOptions:\n"
		   "  -v, --verbose  log probes and libbpf's messages to stderr\n"
		   "  -h, --help     print this help\n"
		   "  -V, --version  print the version\n");
}

static int cmd_help(int argc, char **argv)
{
	usage(stdout);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	printf("tally %s\n", TALLY_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;

	log__setup_libbpf();
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			log__set_level(LOG_DEBUG);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			return cmd_version(0, NULL);
		} else {
			log_err("unknown option '%s' (see tally --help)", argv[i]);
			return 2;
		}
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		/* Unique prefixes work, as in bpftool and ip: "tally st". */
		if (!strncmp(argv[i], cmds[c].name, strlen(argv[i])))
			return cmds[c].fn(argc - i, argv + i);
	}
	log_err("unknown command '%s' (see tally --help)", argv[i]);
	return 2;
}
