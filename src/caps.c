// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Capabilities: drop what a daemon no longer needs. See caps.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "caps.h"

/* Bits 0..63 fit a mask; the kernel has 41 (cap_last_cap is 40 on 6.x). */
#define CAPS_MAX 64

static const char *const cap_names[] = {
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
};

static int caps__get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};

	return syscall(SYS_capget, &h, d) ? -errno : 0;
}

int caps__effective(uint64_t *mask)
{
	struct __user_cap_data_struct d[2] = {};
	int err = caps__get(d);

	if (!err)
		*mask = d[0].effective | (uint64_t)d[1].effective << 32;
	return err;
}

int caps__restrict(uint64_t keep, uint64_t *kept)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {};
	uint64_t perm;
	int err;

	err = caps__get(d);
	if (err)
		return err;
	perm = (d[0].permitted | (uint64_t)d[1].permitted << 32) & keep;
	/* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability. */
	for (int cap = 0; cap < CAPS_MAX; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (in < 0)
			break;
		if (in && !(perm & CAPS_BIT(cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
			return -errno;
	}
	/* Ambient capabilities came with kernel 4.3 (commit 58319057b784); EINVAL before. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	for (int i = 0; i < 2; i++) {
		d[i].effective = d[i].permitted = (uint32_t)(perm >> (32 * i));
		d[i].inheritable = 0;
	}
	if (syscall(SYS_capset, &h, d))
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (kept)
		return caps__effective(kept);
	return 0;
}

int caps__follow_process(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct proc[2] = {}, self[2] = {};
	bool more = false;
	int err;

	/* capget of the process id reads the main thread's sets; 0 reads this thread's. */
	h.pid = getpid();
	if (syscall(SYS_capget, &h, proc))
		return -errno;
	err = caps__get(self);
	if (err)
		return err;
	for (int i = 0; i < 2; i++) {
		more = more || (self[i].effective & ~proc[i].effective) ||
		       (self[i].permitted & ~proc[i].permitted) ||
		       (self[i].inheritable & ~proc[i].inheritable);
		self[i].effective &= proc[i].effective;
		self[i].permitted &= proc[i].permitted;
		self[i].inheritable &= proc[i].inheritable;
	}
	h.pid = 0;
	return more && syscall(SYS_capset, &h, self) ? -errno : 0;
}

void caps__format(uint64_t mask, char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return;
	buf[0] = '\0';
	if (!mask) {
		snprintf(buf, len, "none");
		return;
	}
	for (int cap = 0; cap < CAPS_MAX && off < len; cap++) {
		if (!(mask & CAPS_BIT(cap)))
			continue;
		if (cap < (int)(sizeof(cap_names) / sizeof(cap_names[0])))
			off +=
			    snprintf(buf + off, len - off, "%s%s", off ? "," : "", cap_names[cap]);
		else
			off += snprintf(buf + off, len - off, "%scap_%d", off ? "," : "", cap);
	}
}
