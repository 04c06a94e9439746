// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pin.h"
#include "util.h"

/* Where systemd and most distributions mount bpffs; tally mounts it there when it is not. */
#define BPFFS_DEFAULT "/sys/fs/bpf"

/*
 * tcx (6.6, commit e420bed02507) and netkit (6.7) link types; libbpf 1.1's headers predate
 * them. Their info starts with the device's ifindex, 0 once the device went away.
 */
#define TALLY_BPF_LINK_TYPE_TCX	   11
#define TALLY_BPF_LINK_TYPE_NETKIT 13

uint64_t pin__layout(const void *elf, size_t elf_len, const uint64_t *settings, size_t n)
{
	uint64_t h = hash__bytes(0x7a11, elf, elf_len);

	return hash__bytes(h, settings, n * sizeof(*settings));
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && (uint64_t)st.f_type == BPF_FS_MAGIC;
}

static int mkdir_one(const char *path)
{
	if (!mkdir(path, 0700) || errno == EEXIST)
		return 0;
	return -errno;
}

/* Make root a directory on bpffs, mounting bpffs at its usual place if that is what's missing. */
static int root__prepare(const char *root)
{
	size_t n = strlen(BPFFS_DEFAULT);
	int err;

	if (on_bpffs(root))
		return 0;
	if (!strncmp(root, BPFFS_DEFAULT, n) && (root[n] == '/' || !root[n]) &&
	    !on_bpffs(BPFFS_DEFAULT)) {
		/* What systemd does at boot; mode 0700: pins are root's alone. */
		if (mount("bpf", BPFFS_DEFAULT, "bpf", 0, "mode=0700"))
			return -errno;
	}
	err = mkdir_one(root);
	if (err)
		return err;
	return on_bpffs(root) ? 0 : -ENOTSUP;
}

int pin__open(struct pin *p, const char *root, const char *feature, uint64_t layout)
{
	struct stat st;
	int err;

	memset(p, 0, sizeof(*p));
	if (snprintf(p->root, sizeof(p->root), "%s", root) >= (int)sizeof(p->root) ||
	    snprintf(p->feature, sizeof(p->feature), "%s", feature) >= (int)sizeof(p->feature) ||
	    snprintf(p->dir, sizeof(p->dir), "%s/%s-%016" PRIx64, root, feature, layout) >=
		(int)sizeof(p->dir))
		return -ENAMETOOLONG;
	err = root__prepare(p->root);
	if (err)
		return err;
	p->reused = !stat(p->dir, &st) && S_ISDIR(st.st_mode);
	return p->reused ? 0 : mkdir_one(p->dir);
}

static int pin__path(const struct pin *p, const char *name, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/%s", p->dir, name) >= (int)len ? -ENAMETOOLONG : 0;
}

int pin__maps(const struct pin *p, struct bpf_object *obj)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int err;

	bpf_object__for_each_map(map, obj) {
		/*
		 * .rodata holds load-time settings, which the layout id covers: nothing to share,
		 * and the kernel refuses the writable fd libbpf would reopen a frozen map with.
		 */
		if (bpf_map__is_internal(map) && (bpf_map__map_flags(map) & BPF_F_RDONLY_PROG))
			continue;
		err = pin__path(p, bpf_map__name(map), path, sizeof(path));
		/* bpffs refuses names with a dot in them ("cpu_bpf.bss"). */
		for (char *dot = strrchr(path, '/'); !err && (dot = strchr(dot, '.'));)
			*dot = '_';
		if (!err)
			err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
	}
	return 0;
}

bool pin__link_alive(int fd)
{
	/* struct bpf_link_info with room for any union member: type, id, prog_id, then the union. */
	uint64_t info[16] = {};
	uint32_t len = sizeof(info), type, ifindex;

	if (bpf_obj_get_info_by_fd(fd, info, &len))
		return false;
	memcpy(&type, info, sizeof(type));
	if (type != TALLY_BPF_LINK_TYPE_TCX && type != TALLY_BPF_LINK_TYPE_NETKIT)
		return true;
	memcpy(&ifindex, &info[2], sizeof(ifindex));
	return ifindex != 0;
}

struct bpf_link *pin__link_get(const struct pin *p, const char *name)
{
	struct bpf_link *link;
	char path[PATH_MAX];

	if (pin__path(p, name, path, sizeof(path)) || access(path, F_OK))
		return NULL;
	link = bpf_link__open(path);
	if (link && pin__link_alive(bpf_link__fd(link)))
		return link;
	/* Not a link, or one whose device went: the pin only holds a dead object. */
	bpf_link__destroy(link);
	unlink(path);
	return NULL;
}

int pin__get(const struct pin *p, const char *name)
{
	char path[PATH_MAX];
	int err = pin__path(p, name, path, sizeof(path)), fd;

	if (err)
		return err;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int pin__fd_put(const struct pin *p, const char *name, int fd)
{
	char path[PATH_MAX];
	int err;

	err = pin__path(p, name, path, sizeof(path));
	if (err)
		return err;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return bpf_obj_pin(fd, path) ? -errno : 0;
}

int pin__link_put(const struct pin *p, const char *name, struct bpf_link *link)
{
	return pin__fd_put(p, name, bpf_link__fd(link));
}

int pin__unlink(const struct pin *p, const char *name)
{
	char path[PATH_MAX];
	int err;

	err = pin__path(p, name, path, sizeof(path));
	if (err)
		return err;
	return unlink(path) && errno != ENOENT ? -errno : 0;
}

int pin__attach_skeleton(const struct pin *p, struct bpf_object_skeleton *s)
{
	char name[PATH_MAX];
	int err;

	for (int i = 0; i < s->prog_cnt; i++) {
		struct bpf_program *prog = *s->progs[i].prog;
		struct bpf_link **link = s->progs[i].link;

		if (!bpf_program__autoload(prog) || !bpf_program__autoattach(prog))
			continue;
		snprintf(name, sizeof(name), "link-%s", bpf_program__name(prog));
		*link = pin__link_get(p, name);
		if (*link)
			continue; /* the predecessor's, counting into the same maps */
		*link = bpf_program__attach(prog);
		if (!*link) {
			/* A section libbpf cannot attach by itself (tc, cgroup_skb): the caller's. */
			if (errno == EOPNOTSUPP)
				continue;
			return -errno;
		}
		err = pin__link_put(p, name, *link);
		if (err)
			return err;
	}
	return 0;
}

/* Whether name is "<feature>-<16 hex digits>". */
static bool is_feature_dir(const char *name, const char *feature)
{
	size_t n = strlen(feature);

	if (strncmp(name, feature, n) || name[n] != '-' || strlen(name + n + 1) != 16)
		return false;
	return strspn(name + n + 1, "0123456789abcdef") == 16;
}

bool pin__next_stale(const struct pin *p, char *buf, size_t len)
{
	const char *own = strrchr(p->dir, '/') + 1;
	struct dirent *de;
	bool found = false;
	DIR *d;

	d = opendir(p->root);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		if (!is_feature_dir(de->d_name, p->feature) || !strcmp(de->d_name, own))
			continue;
		found = snprintf(buf, len, "%s/%s", p->root, de->d_name) < (int)len;
	}
	closedir(d);
	return found;
}

int pin__remove_dir(const char *dir)
{
	struct dirent *de;
	int dfd, err = 0;
	DIR *d;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	/* Flat by construction: pins only, no subdirectories. */
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dfd, de->d_name, 0) && errno != ENOENT && !err)
			err = -errno;
	}
	closedir(d);
	if (rmdir(dir) && !err)
		err = -errno;
	return err;
}

int pin__remove_all(const char *root)
{
	static const char *const features[] = {"cpu", "net"};
	char path[PATH_MAX];
	struct dirent *de;
	int err = 0;
	DIR *d;

	d = opendir(root);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		bool ours = false;

		for (size_t i = 0; i < ARRAY_SIZE(features); i++)
			ours |= is_feature_dir(de->d_name, features[i]);
		if (!ours)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", root, de->d_name) >= (int)sizeof(path)) {
			err = -ENAMETOOLONG;
			continue;
		}
		int e = pin__remove_dir(path);

		if (e && !err)
			err = e;
	}
	closedir(d);
	/* Anything else in root is not tally's: root stays then (ENOTEMPTY is reported). */
	if (rmdir(root) && !err)
		err = -errno;
	return err;
}
