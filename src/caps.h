/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Dropping capabilities once a daemon has set itself up: raw capget/capset/prctl, no library.
 * A mask has bit n set for capability n (CAP_BPF is bit 39).
 */
#ifndef __TALLY_CAPS_H
#define __TALLY_CAPS_H

#include <stddef.h>
#include <stdint.h>

#define CAPS_BIT(cap) (1ull << (cap))

/*
 * Keep the capabilities of keep that the process has (permitted) and drop every other one from
 * the bounding set, the ambient set, and the inheritable, permitted and effective sets; then set
 * no_new_privs, so that nothing exec'd can get them back. Dropping from the bounding set needs
 * CAP_SETPCAP, so it comes first. *kept (may be NULL) is what remains in effective. 0 or -errno
 * (the sets may then be partly dropped: the caller should not go on).
 */
int caps__restrict(uint64_t keep, uint64_t *kept);
/*
 * For a thread started before the process dropped its capabilities (each thread has its own
 * sets): drop from this thread's effective, permitted and inheritable sets whatever the
 * process's main thread does not have. 0 or -errno.
 */
int caps__follow_process(void);
/* The effective set of this process. 0 or -errno. */
int caps__effective(uint64_t *mask);
/* "cap_bpf,cap_perfmon" (lowercase, as capsh prints them); "none" for 0. */
void caps__format(uint64_t mask, char *buf, size_t len);

#endif /* __TALLY_CAPS_H */
