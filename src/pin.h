/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Pinning under bpffs, so the agent's counters outlive it: a restarted agent (even after
 * kill -9) reuses the maps and links its predecessor left, and the programs count on while no
 * agent runs. Each feature (cpu, net) pins into <root>/<feature>-<layout>, where <layout>
 * hashes the BPF object and the load-time settings: a directory is only ever reused by a build
 * that would have created the very same maps and programs. Directories of another layout
 * are a previous version's, replaced (after the new programs are attached) and removed.
 */
#ifndef __TALLY_PIN_H
#define __TALLY_PIN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PIN_DEFAULT_ROOT "/sys/fs/bpf/tally"

struct bpf_object;
struct bpf_object_skeleton;
struct bpf_link;

struct pin {
	char root[PATH_MAX];
	char feature[16];
	char dir[PATH_MAX]; /* <root>/<feature>-<layout> */
	bool reused;	    /* dir existed: its maps (and links) are the predecessor's */
};

/*
 * The layout id of a BPF object (the skeleton's ELF bytes) loaded with these settings
 * (load-time globals and map sizes, as plain words).
 */
uint64_t pin__layout(const void *elf, size_t elf_len, const uint64_t *settings, size_t n);

/*
 * Prepare p for one feature: root made a bpffs directory (bpffs is mounted at /sys/fs/bpf
 * when root is under it and nothing is mounted there), and p->dir created or found. 0 or
 * -errno (-ENAMETOOLONG, -ENOTSUP when root is not on bpffs, ...).
 */
int pin__open(struct pin *p, const char *root, const char *feature, uint64_t layout);
/* Give every map of obj (opened, not loaded) its pin path in p->dir: libbpf reuses or pins. */
int pin__maps(const struct pin *p, struct bpf_object *obj);
/*
 * The link pinned as name, when it is there and still attached (a tcx link whose device went
 * is not: its pin is removed). NULL otherwise.
 */
struct bpf_link *pin__link_get(const struct pin *p, const char *name);
/* An fd of the object pinned as name, or -errno (-ENOENT when there is none). */
int pin__get(const struct pin *p, const char *name);
/* Pin a new link as name (an old pin of that name is replaced). 0 or -errno. */
int pin__link_put(const struct pin *p, const char *name, struct bpf_link *link);
/* Same for a bare link fd (links made with bpf_link_create). */
int pin__fd_put(const struct pin *p, const char *name, int fd);
/*
 * A skeleton's attach in pinned form: each program that attaches by itself gets the link
 * pinned as link-<program> when it is there and alive, else a new one, pinned. 0 or -errno.
 */
int pin__attach_skeleton(const struct pin *p, struct bpf_object_skeleton *s);
/* Remove the pin name (its link detaches once no process holds it). 0 or -errno. */
int pin__unlink(const struct pin *p, const char *name);
/* Whether a pinned link is still attached (a tcx or netkit link loses its device). */
bool pin__link_alive(int link_fd);

/*
 * The directories of this feature with another layout (a previous version's), one at a time:
 * fills buf and returns true while there is one; the caller removes it with pin__remove_dir
 * (or the loop would not end).
 */
bool pin__next_stale(const struct pin *p, char *buf, size_t len);
/* Unlink every pin in dir and remove it. 0 or -errno. */
int pin__remove_dir(const char *dir);
/*
 * `tally agent --cleanup`: remove every feature directory under root and root itself, so every
 * pinned map and link goes (links detach). 0, -ENOENT when there was nothing, or -errno.
 */
int pin__remove_all(const char *root);

#endif /* __TALLY_PIN_H */
