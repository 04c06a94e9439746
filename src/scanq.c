// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "disk.h"
#include "scanq.h"
#include "util.h"

struct scan_job {
	struct scan_job *next;
	uint64_t key;
	struct disk_tree *tree;
	int err;
	char path[]; /* flexible */
};

struct scanq {
	struct disk *d;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stop;
	struct scan_job *todo, **todo_tail; /* FIFO */
	struct scan_job *done;		    /* any order */
	unsigned pending;
};

struct scanq *scanq__new(struct disk *d)
{
	struct scanq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->d = d;
	q->todo_tail = &q->todo;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	return q;
}

static void *scanq__worker(void *arg)
{
	struct scanq *q = arg;

	thread__background();
	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct scan_job *j;

		while (!q->todo && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop)
			break;
		j = q->todo;
		q->todo = j->next;
		if (!q->todo)
			q->todo_tail = &q->todo;
		pthread_mutex_unlock(&q->lock);
		/* Capabilities are per thread: no walk with more than the agent kept. */
		caps__follow_process();
		j->tree = disk__track(q->d, j->path);
		j->err = j->tree ? 0 : -errno;
		pthread_mutex_lock(&q->lock);
		j->next = q->done;
		q->done = j;
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int scanq__submit(struct scanq *q, uint64_t key, const char *path)
{
	size_t len = strlen(path) + 1;
	struct scan_job *j = malloc(sizeof(*j) + len);
	int err = 0;

	if (!j)
		return -ENOMEM;
	*j = (struct scan_job){.key = key};
	memcpy(j->path, path, len);
	pthread_mutex_lock(&q->lock);
	if (!q->started) {
		err = -pthread_create(&q->thread, NULL, scanq__worker, q);
		q->started = !err;
	}
	if (!err) {
		*q->todo_tail = j;
		q->todo_tail = &j->next;
		q->pending++;
		pthread_cond_signal(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	if (err)
		free(j);
	return err;
}

void scanq__drain(struct scanq *q,
		  void (*done)(uint64_t key, struct disk_tree *t, int err, void *ctx), void *ctx)
{
	struct scan_job *j;

	pthread_mutex_lock(&q->lock);
	j = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->lock);
	while (j) {
		struct scan_job *next = j->next;

		done(j->key, j->tree, j->err, ctx);
		pthread_mutex_lock(&q->lock);
		q->pending--;
		pthread_mutex_unlock(&q->lock);
		free(j);
		j = next;
	}
}

unsigned scanq__pending(struct scanq *q)
{
	unsigned n;

	pthread_mutex_lock(&q->lock);
	n = q->pending;
	pthread_mutex_unlock(&q->lock);
	return n;
}

static void drop(uint64_t key, struct disk_tree *t, int err, void *ctx)
{
	disk__untrack(ctx, t);
}

void scanq__free(struct scanq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	if (q->started)
		pthread_join(q->thread, NULL);
	scanq__drain(q, drop, q->d);
	while (q->todo) {
		struct scan_job *next = q->todo->next;

		free(q->todo);
		q->todo = next;
	}
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q);
}
