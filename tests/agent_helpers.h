/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Running `tally agent` in tests: start and stop it by pid, talk HTTP to it over plain
 * sockets, parse its JSON with python3. ah_cleanup() in a suite's .fini kills what is left.
 */
#ifndef __TALLY_TESTS_AGENT_HELPERS_H
#define __TALLY_TESTS_AGENT_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define TALLY "build/tally"

struct agent {
	pid_t pid;
	int port;
	char log[128];	/* --log-file, and stderr before it is opened */
	char sock[108]; /* --socket; "" for none */
};

struct resp {
	int status; /* 0: no status line came back */
	char *raw;  /* headers and body, NUL-terminated */
	size_t len;
	const char *body;
	size_t body_len;
};

/*
 * Start `tally agent --listen 127.0.0.1:0 --log-file LOG --socket SOCK ARGS` (stderr to the
 * log too), and wait (bounded) for its start line, which names the port and comes after the
 * first collection. Each agent gets its own socket, /dev/shm/tally-test-<pid>-<n>.sock, so
 * that agents of concurrent tests never meet.
 * Unless ARGS has --bpffs and --state-dir, the agent pins nothing and keeps no checkpoint
 * ('none').
 */
void agent_start(struct agent *a, const char *args);
/* The same with the socket at sock (NULL: the agent's own as above; "none": no socket). */
void agent_start_at(struct agent *a, const char *sock, const char *args);
/* Send sig and wait (bounded) for the exit; returns the wait status. */
int agent_stop(struct agent *a, int sig, unsigned timeout_ms);
/* Kill (by pid) and reap an agent still running, and remove its log. */
void agent_kill(struct agent *a);
void ah_cleanup(void);

/*
 * A container cgroup as docker names it (<test cgroup>/docker-<id>.scope), id unique to this
 * test process and n; removed by th_cleanup. Returns its absolute path.
 */
const char *make_container(const char *test, char *id, unsigned n);

uint64_t now_ns(clockid_t clk);
/* The whole log so far, NUL-terminated, in buf. */
void read_log(const struct agent *a, char *buf, size_t len);
int count_lines(const struct agent *a, const char *needle);

int http_connect(int port);
/* Connect to a Unix socket: the fd, or -errno (a refusal is what some tests want). */
int unix_connect(const char *path);
/* GET path over the agent's Unix socket. */
void unix_get(const char *sock, const char *path, struct resp *r);
/*
 * Run a shell command with a seccomp filter that kills it (SIGSYS) at its first bpf() call;
 * stdout (and stderr when cmd says 2>&1) into out. Returns the wait status.
 */
int run_without_bpf(const char *cmd, char *out, size_t len);
/* Send what it takes; a server that stopped reading (and answered) is no failure here. */
void send_all(int fd, const void *buf, size_t len);
void resp_free(struct resp *r);
/* Read until the server closes (every request says Connection: close), then parse. */
void http_read(int fd, struct resp *r);
void http_raw(int port, const void *req, size_t len, struct resp *r);
void http_send(int fd, const char *method, const char *path, const char *headers);
void http_get(const struct agent *a, const char *path, const char *headers, struct resp *r);
/* A header's value in a response (case-insensitive name), copied into buf; NULL if absent. */
const char *resp_header(const struct resp *r, const char *name, char *buf, size_t len);
/* One request (body, if any, sent after the headers): its status, and Allow into allow. */
int http_status(int port, const char *method, const char *path, const char *headers,
		const char *body, char allow[128]);
/* Run a python3 script on input (its stdin); its stdout in out; the exit status. */
int py(const char *script, const char *input, size_t len, char *out, size_t outlen);

#endif /* __TALLY_TESTS_AGENT_HELPERS_H */
