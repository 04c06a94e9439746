// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Running `tally agent` in tests: the binary as a child on a free loopback port, killed by pid
 * in .fini (ah_cleanup) even when an assertion failed, and with its test (PR_SET_PDEATHSIG)
 * if the test process itself is killed; plain-socket HTTP to it; python3 as the independent
 * JSON parser.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <criterion/criterion.h>

#include "agent_helpers.h"
#include "helpers.h"

#define MAX_AGENTS 8

/*
 * Copies of the agents started and not yet killed, for ah_cleanup: a test's own struct agent is
 * on its stack, gone by the time .fini runs. A slot is free when its log is "".
 */
static struct agent agents[MAX_AGENTS];
static char tmp_py[128], tmp_json[128];

static struct agent *agent_copy(const struct agent *a)
{
	for (int i = 0; i < MAX_AGENTS; i++)
		if (agents[i].log[0] && !strcmp(agents[i].log, a->log))
			return &agents[i];
	return NULL;
}

static void agent_forget(struct agent *a)
{
	struct agent *c = agent_copy(a);

	if (c)
		*c = (struct agent){};
}

/* Kill (by pid) and reap an agent still running, and remove its log. */
void agent_kill(struct agent *a)
{
	if (a->pid > 0) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
		a->pid = 0;
	}
	unlink(a->log);
	/*
	 * An agent killed by SIGKILL leaves its socket; a clean exit has removed it. Its lock
	 * file stays either way (see socket__lock): the socket's path is the test's.
	 */
	if (a->sock[0]) {
		char lock[sizeof(a->sock) + 8];

		unlink(a->sock);
		snprintf(lock, sizeof(lock), "%s.lock", a->sock);
		unlink(lock);
	}
	agent_forget(a);
}

const char *make_container(const char *test, char *id, unsigned n)
{
	const char *top = th_test_cgroup(test) + strlen(th_cgroot()) + 1;
	char rel[512];

	snprintf(id, 65, "a9e0%08x%04x0c0ffee0ddba11f00dfacade5eedc0de0123456789abcdef",
		 (unsigned)getpid(), n);
	snprintf(rel, sizeof(rel), "%s/docker-%s.scope", top, id);
	return th_cgroup_create(rel);
}

uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The whole log so far, NUL-terminated, in buf. */
void read_log(const struct agent *a, char *buf, size_t len)
{
	size_t n = 0;
	FILE *f = fopen(a->log, "r");

	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

int count_lines(const struct agent *a, const char *needle)
{
	static char buf[1 << 20];
	int n = 0;

	read_log(a, buf, sizeof(buf));
	for (const char *p = buf; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/*
 * Start `tally agent --listen 127.0.0.1:0 ARGS` with stderr to a log, and wait (bounded) for
 * its start line, which names the port and comes after the first collection.
 */
void agent_start(struct agent *a, const char *args)
{
	agent_start_at(a, NULL, args);
}

void agent_start_at(struct agent *a, const char *sock, const char *args)
{
	static char log[1 << 20];
	static int seq;
	char cmd[1024];
	const char *p;
	int slot = -1, st;

	for (int i = 0; i < MAX_AGENTS; i++)
		if (!agents[i].log[0])
			slot = i;
	cr_assert_geq(slot, 0, "too many agents");
	*a = (struct agent){};
	snprintf(a->log, sizeof(a->log), "/tmp/tally-test-agent-%d-%d.log", (int)getpid(), seq);
	if (!sock)
		snprintf(a->sock, sizeof(a->sock), "/dev/shm/tally-test-%d-%d.sock", (int)getpid(),
			 seq);
	else if (strcmp(sock, "none"))
		snprintf(a->sock, sizeof(a->sock), "%s", sock);
	seq++;
	/*
	 * Nothing pinned and no checkpoint unless the test says where: they would outlive the
	 * test, and tests must not touch the node's own agent's.
	 */
	snprintf(cmd, sizeof(cmd),
		 "exec " TALLY " agent --listen 127.0.0.1:0 --log-file %s --socket %s %s %s %s",
		 a->log, a->sock[0] ? a->sock : "none",
		 strstr(args, "--bpffs") ? "" : "--bpffs none",
		 strstr(args, "--state-dir") ? "" : "--state-dir none", args);
	a->pid = fork();
	cr_assert_geq(a->pid, 0, "fork: %s", strerror(errno));
	if (a->pid == 0) {
		int fd = open(a->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		/* The agent must not outlive a test that crashed or timed out. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || null < 0 || dup2(fd, 2) < 0 || dup2(null, 1) < 0 || dup2(null, 0) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	agents[slot] = *a;
	for (int i = 0; i < 9000; i++) {
		read_log(a, log, sizeof(log));
		p = strstr(log, "listening on 127.0.0.1:");
		if (p) {
			a->port = atoi(p + strlen("listening on 127.0.0.1:"));
			cr_assert_gt(a->port, 0, "no port in: %s", log);
			return;
		}
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			a->pid = agents[slot].pid = 0;
			cr_assert_fail("tally agent %s exited (status %d) before listening: %s",
				       args, st, log);
		}
		th_sleep_ms(10);
	}
	cr_assert_fail("tally agent %s did not start in 90 s: %s", args, log);
}

/* Send sig and wait (bounded) for the exit; returns the wait status. */
int agent_stop(struct agent *a, int sig, unsigned timeout_ms)
{
	int st = 0;

	cr_assert_eq(kill(a->pid, sig), 0);
	for (unsigned i = 0; i < timeout_ms / 10; i++) {
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			struct agent *c = agent_copy(a);

			if (c)
				c->pid = 0; /* reaped: the pid may be another process's now */
			a->pid = 0;
			return st;
		}
		th_sleep_ms(10);
	}
	cr_assert_fail("tally agent did not stop within %u ms of signal %d", timeout_ms, sig);
	return -1;
}

int http_connect(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 20};
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect to %d: %s",
		     port, strerror(errno));
	return fd;
}

int unix_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 20};
	int fd, err;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

void unix_get(const char *sock, const char *path, struct resp *r)
{
	int fd = unix_connect(sock);

	cr_assert_geq(fd, 0, "connect to '%s': %s", sock, strerror(-fd));
	http_send(fd, "GET", path, NULL);
	http_read(fd, r);
}

int run_without_bpf(const char *cmd, char *out, size_t len)
{
	struct sock_filter filter[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
	int pfd[2], st = 0;
	size_t n = 0;
	ssize_t got;
	pid_t pid;

	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(pfd[1], 1) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	/* Read to the end, keeping what fits: a child blocked on a full pipe would never exit. */
	for (;;) {
		char scratch[4096];

		if (n + 1 < len)
			got = read(pfd[0], out + n, len - 1 - n);
		else
			got = read(pfd[0], scratch, sizeof(scratch));
		if (got <= 0)
			break;
		if (n + 1 < len)
			n += got;
	}
	out[n] = '\0';
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return st;
}

/* Send what it takes; a server that stopped reading (and answered) is no failure here. */
void send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		p += n;
		len -= n;
	}
}

void resp_free(struct resp *r)
{
	free(r->raw);
	*r = (struct resp){};
}

/* Read until the server closes (every request says Connection: close), then parse. */
void http_read(int fd, struct resp *r)
{
	size_t cap = 1 << 16;
	char *end;

	*r = (struct resp){.raw = malloc(cap)};
	cr_assert_not_null(r->raw);
	for (;;) {
		ssize_t n;

		if (r->len + 1 == cap) {
			r->raw = realloc(r->raw, cap *= 2);
			cr_assert_not_null(r->raw);
		}
		n = recv(fd, r->raw + r->len, cap - 1 - r->len, 0);
		if (n <= 0)
			break;
		r->len += n;
	}
	r->raw[r->len] = '\0';
	close(fd);
	if (r->len > 12 && !strncmp(r->raw, "HTTP/1.", 7))
		r->status = atoi(r->raw + 9);
	end = strstr(r->raw, "\r\n\r\n");
	r->body = end ? end + 4 : r->raw + r->len;
	r->body_len = r->raw + r->len - r->body;
}

void http_raw(int port, const void *req, size_t len, struct resp *r)
{
	int fd = http_connect(port);

	send_all(fd, req, len);
	http_read(fd, r);
}

void http_send(int fd, const char *method, const char *path, const char *headers)
{
	char *req;
	int len;

	len = asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
		       method, path, headers ? headers : "");
	cr_assert_gt(len, 0);
	send_all(fd, req, len);
	free(req);
}

void http_get(const struct agent *a, const char *path, const char *headers, struct resp *r)
{
	int fd = http_connect(a->port);

	http_send(fd, "GET", path, headers);
	http_read(fd, r);
}

/* A header's value in a response (case-insensitive name), copied into buf; NULL if absent. */
const char *resp_header(const struct resp *r, const char *name, char *buf, size_t len)
{
	const char *p = strstr(r->raw, "\r\n");
	size_t n = strlen(name);

	while (p && p < r->body) {
		p += 2;
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1, *e = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(buf, len, "%.*s", (int)(e - v), v);
			return buf;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

/* One request (body, if any, sent after the headers): its status, and Allow into allow. */
int http_status(int port, const char *method, const char *path, const char *headers,
		const char *body, char allow[128])
{
	int fd = http_connect(port), st;
	struct resp r;

	http_send(fd, method, path, headers);
	if (body)
		send_all(fd, body, strlen(body));
	http_read(fd, &r);
	if (!resp_header(&r, "Allow", allow, 128))
		allow[0] = '\0';
	st = r.status;
	resp_free(&r);
	return st;
}

/* Run a python3 script on input (its stdin); its stdout in out; the exit status. */
int py(const char *script, const char *input, size_t len, char *out, size_t outlen)
{
	char cmd[512];
	FILE *f;

	snprintf(tmp_py, sizeof(tmp_py), "/tmp/tally-test-agent-%d.py", (int)getpid());
	snprintf(tmp_json, sizeof(tmp_json), "/tmp/tally-test-agent-%d.json", (int)getpid());
	f = fopen(tmp_py, "w");
	cr_assert_not_null(f);
	fputs(script, f);
	fclose(f);
	f = fopen(tmp_json, "w");
	cr_assert_not_null(f);
	fwrite(input, 1, len, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "python3 %s < %s 2>&1", tmp_py, tmp_json);
	return th_run(cmd, out, outlen);
}

/* Kill every agent still running, remove the temp files: for the suites' .fini. */
void ah_cleanup(void)
{
	for (int i = 0; i < MAX_AGENTS; i++)
		if (agents[i].log[0])
			agent_kill(&agents[i]);
	if (tmp_py[0])
		unlink(tmp_py);
	if (tmp_json[0])
		unlink(tmp_json);
}
