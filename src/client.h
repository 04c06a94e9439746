/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The client side of the agent's local socket: one HTTP GET over a Unix socket, for commands
 * that ask a running agent instead of loading the BPF programs themselves.
 */
#ifndef __TALLY_CLIENT_H
#define __TALLY_CLIENT_H

#include <stddef.h>

/* Where `tally agent` serves its API locally, and where `tally stats` looks for it. */
#define CLIENT_DEFAULT_SOCKET "/run/tally/tally.sock"

struct client_resp {
	int status; /* the HTTP status */
	char *body; /* malloc'd, NUL-terminated (the body may hold NULs: use len) */
	size_t len;
};

/*
 * GET path from the agent on the Unix socket sock, within timeout_ms in all (connecting,
 * sending, the agent's collection if it takes one, reading). 0 with *r filled (any status),
 * or -errno: -ENOENT (no socket file) and -ECONNREFUSED (nobody listens) mean no agent;
 * -ETIMEDOUT, -EPROTO (not an HTTP answer, or cut short), -EACCES, -ENAMETOOLONG and others
 * are errors. *r is zeroed on error.
 */
int client__get(const char *sock, const char *path, unsigned timeout_ms, struct client_resp *r);
void client_resp__free(struct client_resp *r);

#endif /* __TALLY_CLIENT_H */
