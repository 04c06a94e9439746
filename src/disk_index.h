/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The in-memory index of one tree's names and inodes: what `du -s` would count, kept current
 * one name at a time. Pure logic, no I/O: the disk engine feeds it what fstatat() saw.
 *
 * A node is one name in the tree (the root has none). Names are found by a 64-bit hash of
 * (parent directory inode, name), inodes by number; the names of a hard-linked inode share one
 * ino chain, so an inode counts once however many names it has inside the tree. The numbers
 * are du's: used = sum of st_blocks * 512 over unique inodes, inodes = unique inodes, the root
 * included.
 */
#ifndef __TALLY_DISK_INDEX_H
#define __TALLY_DISK_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dindex;

struct dindex_totals {
	uint64_t used_bytes;
	uint64_t inodes;
	uint64_t names; /* nodes: inodes plus extra hard links */
	uint64_t dirs;	/* directories, the root included */
};

/* NULL and errno (ENOMEM). */
struct dindex *dindex__new(uint64_t root_ino, uint64_t root_blocks);
void dindex__free(struct dindex *ix); /* accepts NULL */

/*
 * The name (parent_ino, name) now refers to inode ino. A changed inode under an existing name
 * replaces it (with its subtree); a directory already indexed under another name is moved
 * (directories have one name), keeping its subtree. *new_dir is set when the name is a
 * directory the index did not know: the caller scans it. Returns 0, -ENOENT when parent_ino is
 * not an indexed directory, -ELOOP when the directory would end up below itself (its other
 * moves are not applied yet; nothing changed), -ENOMEM.
 */
int dindex__link(struct dindex *ix, uint64_t parent_ino, const char *name, size_t len, uint64_t ino,
		 uint64_t blocks, bool is_dir, bool *new_dir);
/* The name is gone (a directory takes its whole subtree). 0 whether or not it was indexed. */
int dindex__unlink(struct dindex *ix, uint64_t parent_ino, const char *name, size_t len);
/*
 * Every name of an inode is gone (a directory with its subtree): the inode number was reused
 * by a different file before its old names' deletions were applied. The root stays.
 */
void dindex__drop_ino(struct dindex *ix, uint64_t ino);
/* An indexed inode has a new size. No-op for an inode not in the tree. */
void dindex__set_blocks(struct dindex *ix, uint64_t ino, uint64_t blocks);

bool dindex__has_dir(const struct dindex *ix, uint64_t ino);
bool dindex__has_ino(const struct dindex *ix, uint64_t ino);
/* The inode a name refers to, or 0. */
uint64_t dindex__lookup(const struct dindex *ix, uint64_t parent_ino, const char *name, size_t len);
uint64_t dindex__root_ino(const struct dindex *ix);
void dindex__totals(const struct dindex *ix, struct dindex_totals *out);
/* Bytes of memory the index holds (nodes and hash buckets). */
size_t dindex__mem(const struct dindex *ix);

#endif /* __TALLY_DISK_INDEX_H */
