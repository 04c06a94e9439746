// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* One HTTP/1.1 GET over the agent's Unix socket. See client.h. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "util.h"

/* A stats document for 100,000 cgroups is tens of MB; anything past this is not the agent. */
#define CLIENT_MAX_RESPONSE (1024u * 1024 * 1024)

void client_resp__free(struct client_resp *r)
{
	free(r->body);
	*r = (struct client_resp){};
}

/* Milliseconds left until deadline (CLOCK_MONOTONIC ns), 0 when past. */
static int ms_left(uint64_t deadline)
{
	uint64_t now = clock__monotonic_ns();

	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Wait for events on fd until deadline: 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	do {
		n = poll(&pfd, 1, ms_left(deadline));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int send_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int err;

		if (n < 0 && errno == EAGAIN) {
			err = wait_fd(fd, POLLOUT, deadline);
			if (err)
				return err;
			continue;
		}
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0) {
			buf += n;
			len -= n;
		}
	}
	return 0;
}

/* Read until the agent closes (the request says Connection: close). */
static int read_all(int fd, char **out, size_t *outlen, uint64_t deadline)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *p;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			if (cap >= CLIENT_MAX_RESPONSE) {
				err = -EFBIG;
				break;
			}
			p = realloc(buf, cap *= 2);
			if (!p) {
				err = -ENOMEM;
				break;
			}
			buf = p;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n > 0) {
			len += n;
			continue;
		}
		if (!n)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			err = -errno;
			break;
		}
		err = wait_fd(fd, POLLIN, deadline);
		if (err)
			break;
	}
	if (err) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* Status line, headers, body: -EPROTO for anything but a whole HTTP/1.x answer. */
static int parse(char *raw, size_t len, struct client_resp *r)
{
	char *hend, *line, *eol;
	long long clen = -1;
	size_t blen;

	if (len < 12 || strncmp(raw, "HTTP/1.", 7) || raw[8] != ' ')
		return -EPROTO;
	r->status = atoi(raw + 9);
	if (r->status < 100 || r->status > 599)
		return -EPROTO;
	hend = strstr(raw, "\r\n\r\n");
	if (!hend)
		return -EPROTO;
	for (line = strstr(raw, "\r\n") + 2; line < hend; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (!strncasecmp(line, "Content-Length:", 15))
			clen = strtoll(line + 15, NULL, 10);
	}
	hend += 4;
	blen = raw + len - hend;
	/* MHD sends Content-Length for a buffer response: less means the agent went away. */
	if (clen >= 0 && (size_t)clen != blen)
		return -EPROTO;
	r->body = malloc(blen + 1);
	if (!r->body)
		return -ENOMEM;
	memcpy(r->body, hend, blen);
	r->body[blen] = '\0';
	r->len = blen;
	return 0;
}

int client__get(const char *sock, const char *path, unsigned timeout_ms, struct client_resp *r)
{
	uint64_t deadline = clock__monotonic_ns() + (uint64_t)timeout_ms * 1000000;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char *req = NULL, *raw = NULL;
	size_t rawlen = 0;
	int fd = -1, err, len;

	*r = (struct client_resp){};
	if (strlen(sock) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/*
	 * Non-blocking: a full backlog answers EAGAIN at once (an agent too busy to accept, in
	 * its first collection); retry until the deadline rather than block.
	 */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		if (err != -EAGAIN && err != -EINTR)
			goto out;
		if (!ms_left(deadline)) {
			err = -ETIMEDOUT;
			goto out;
		}
		usleep(10000);
	}
	len =
	    asprintf(&req, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
	if (len < 0) {
		req = NULL;
		err = -ENOMEM;
		goto out;
	}
	err = send_all(fd, req, len, deadline);
	if (!err)
		err = read_all(fd, &raw, &rawlen, deadline);
	if (!err)
		err = parse(raw, rawlen, r);
out:
	if (err)
		client_resp__free(r);
	free(raw);
	free(req);
	close(fd);
	return err;
}
