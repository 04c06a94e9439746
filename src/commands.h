/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef __TALLY_COMMANDS_H
#define __TALLY_COMMANDS_H

/* One file per subcommand; each parses its own options and returns the exit status. */
int cmd_stats(int argc, char **argv);
int cmd_du(int argc, char **argv);

#define TALLY_VERSION "0.1.0"

#endif /* __TALLY_COMMANDS_H */
