// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Memory layout, chosen for the budget of 64 bytes per tracked inode: nodes are 40 bytes in
 * chunks of 64, linked into two hash tables of 32-bit bucket heads (by name key, by inode
 * number) kept between half full and full. An agent tracks one tree per container, and most
 * writable layers hold a few hundred inodes, so memory follows the tree from its first node:
 * the first chunk starts at 16 nodes and doubles in place up to 64, the tables start at 16
 * buckets and double, and no tree has more unused nodes than the smaller of its size and 64
 * (2.5 KiB). Past the first chunk nodes never move. The chunk table doubles too; it and the
 * chunks' malloc headers add about 0.4 B per node, the price of that small bound.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk_index.h"
#include "util.h"

#define NIL	    UINT32_MAX
#define FIRST_SIZE  16 /* nodes of the first chunk, buckets of each table, at first */
#define CHUNK_SHIFT 6
#define CHUNK_SIZE  (1u << CHUNK_SHIFT)

#define F_DIR	      (1u << 31)
#define F_FREE	      (1u << 30)
#define F_LIVE	      (1u << 29) /* sweep: known to hang below the root */
#define F_DEAD	      (1u << 28) /* sweep: below the removed directory */
#define CHILDREN_MASK ((1u << 28) - 1)

struct dnode {
	uint64_t ino;
	uint64_t blocks;
	uint64_t key;	 /* hash(parent ino, name); 0 for the root */
	uint32_t parent; /* node id of the parent directory */
	uint32_t ino_next;
	uint32_t key_next; /* also the free list link */
	uint32_t bits;	   /* F_* | number of children */
};

struct htab {
	uint32_t *heads;
	uint32_t mask; /* nbuckets - 1 */
};

struct dindex {
	struct dnode **chunks;
	uint32_t nchunks;
	uint32_t cap;  /* nodes in the chunks */
	uint32_t used; /* node ids handed out so far */
	uint32_t free_head;
	struct htab by_key, by_ino;
	struct dindex_totals totals;
};

static inline struct dnode *N(const struct dindex *ix, uint32_t id)
{
	return &ix->chunks[id >> CHUNK_SHIFT][id & (CHUNK_SIZE - 1)];
}

/* Slots in the chunk table when it holds n chunks: the next power of 2. */
static uint32_t chunks_slots(uint32_t n)
{
	return n <= 1 ? n : 1u << (32 - __builtin_clz(n - 1));
}

/* Seeded with the parent inode; never 0 (0 is the root's key). */
static uint64_t name_key(uint64_t parent_ino, const char *name, size_t len)
{
	uint64_t h = hash__bytes(hash__mix64(parent_ino), name, len);

	return h ? h : 1;
}

static int htab_init(struct htab *t, uint32_t nbuckets)
{
	t->heads = malloc(nbuckets * sizeof(*t->heads));
	if (!t->heads)
		return -ENOMEM;
	memset(t->heads, 0xff, nbuckets * sizeof(*t->heads));
	t->mask = nbuckets - 1;
	return 0;
}

static uint32_t *key_slot(struct dindex *ix, uint64_t key)
{
	return &ix->by_key.heads[hash__mix64(key) & ix->by_key.mask];
}

static uint32_t *ino_slot(struct dindex *ix, uint64_t ino)
{
	return &ix->by_ino.heads[hash__mix64(ino) & ix->by_ino.mask];
}

static void hash_in(struct dindex *ix, uint32_t id)
{
	struct dnode *n = N(ix, id);
	uint32_t *s = key_slot(ix, n->key);

	n->key_next = *s;
	*s = id;
	s = ino_slot(ix, n->ino);
	n->ino_next = *s;
	*s = id;
}

static void unlink_chain(struct dindex *ix, uint32_t *s, uint32_t id, bool by_key)
{
	while (*s != NIL) {
		struct dnode *n = N(ix, *s);
		uint32_t *next = by_key ? &n->key_next : &n->ino_next;

		if (*s == id) {
			*s = *next;
			return;
		}
		s = next;
	}
}

static void hash_out(struct dindex *ix, uint32_t id)
{
	struct dnode *n = N(ix, id);

	unlink_chain(ix, key_slot(ix, n->key), id, true);
	unlink_chain(ix, ino_slot(ix, n->ino), id, false);
}

/* Double both tables when there are more names than buckets. */
static int maybe_grow(struct dindex *ix)
{
	struct htab k, i;
	uint32_t nb = ix->by_key.mask + 1;

	if (ix->totals.names < nb || nb >= (1u << 31))
		return 0;
	if (htab_init(&k, nb * 2))
		return -ENOMEM;
	if (htab_init(&i, nb * 2)) {
		free(k.heads);
		return -ENOMEM;
	}
	free(ix->by_key.heads);
	free(ix->by_ino.heads);
	ix->by_key = k;
	ix->by_ino = i;
	for (uint32_t id = 0; id < ix->used; id++)
		if (!(N(ix, id)->bits & F_FREE))
			hash_in(ix, id);
	return 0;
}

/*
 * Room for more nodes: the first chunk doubles in place up to CHUNK_SIZE (FIRST_SIZE is a
 * power of 2 below it), then whole chunks are added.
 */
static int nodes_grow(struct dindex *ix)
{
	uint32_t n = ix->nchunks, size = n ? CHUNK_SIZE : FIRST_SIZE;
	struct dnode **c = ix->chunks;

	if (n == 1 && ix->cap < CHUNK_SIZE) {
		/* No caller holds a node pointer across node_alloc(): chunk 0 may move. */
		struct dnode *first = realloc(c[0], ix->cap * 2 * sizeof(*first));

		if (!first)
			return -ENOMEM;
		c[0] = first;
		ix->cap *= 2;
		return 0;
	}
	if ((uint64_t)ix->cap + size > NIL)
		return -ENOMEM;
	if (!(n & (n - 1))) { /* 0 or a power of 2: the table is full */
		c = realloc(c, chunks_slots(n + 1) * sizeof(*c));
		if (!c)
			return -ENOMEM;
		ix->chunks = c;
	}
	c[n] = malloc(size * sizeof(**c));
	if (!c[n])
		return -ENOMEM;
	ix->nchunks++;
	ix->cap += size;
	return 0;
}

static uint32_t node_alloc(struct dindex *ix)
{
	uint32_t id;

	if (ix->free_head != NIL) {
		id = ix->free_head;
		ix->free_head = N(ix, id)->key_next;
		return id;
	}
	if (ix->used == ix->cap && nodes_grow(ix))
		return NIL;
	return ix->used++;
}

static uint32_t find_key(const struct dindex *ix, uint64_t key)
{
	uint32_t id = ix->by_key.heads[hash__mix64(key) & ix->by_key.mask];

	while (id != NIL && N(ix, id)->key != key)
		id = N(ix, id)->key_next;
	return id;
}

/* The first node of an inode, or NIL. */
static uint32_t find_ino(const struct dindex *ix, uint64_t ino)
{
	uint32_t id = ix->by_ino.heads[hash__mix64(ino) & ix->by_ino.mask];

	while (id != NIL && N(ix, id)->ino != ino)
		id = N(ix, id)->ino_next;
	return id;
}

static uint32_t find_dir(const struct dindex *ix, uint64_t ino)
{
	uint32_t id = find_ino(ix, ino);

	return id != NIL && (N(ix, id)->bits & F_DIR) ? id : NIL;
}

struct dindex *dindex__new(uint64_t root_ino, uint64_t root_blocks)
{
	struct dindex *ix = calloc(1, sizeof(*ix));
	struct dnode *root;

	if (!ix)
		return NULL;
	ix->free_head = NIL;
	if (htab_init(&ix->by_key, FIRST_SIZE) || htab_init(&ix->by_ino, FIRST_SIZE) ||
	    node_alloc(ix) != 0) {
		dindex__free(ix);
		errno = ENOMEM;
		return NULL;
	}
	root = N(ix, 0);
	*root = (struct dnode){.ino = root_ino, .blocks = root_blocks, .bits = F_DIR};
	hash_in(ix, 0);
	ix->totals = (struct dindex_totals){
	    .used_bytes = root_blocks * 512, .inodes = 1, .names = 1, .dirs = 1};
	return ix;
}

void dindex__free(struct dindex *ix)
{
	if (!ix)
		return;
	for (uint32_t i = 0; i < ix->nchunks; i++)
		free(ix->chunks[i]);
	free(ix->chunks);
	free(ix->by_key.heads);
	free(ix->by_ino.heads);
	free(ix);
}

/*
 * Remove one node; the inode leaves the totals with its last name. fix_parent is false inside
 * a subtree sweep, where the parent may already be gone.
 */
static void node_drop(struct dindex *ix, uint32_t id, bool fix_parent)
{
	struct dnode *n = N(ix, id);

	hash_out(ix, id);
	if (find_ino(ix, n->ino) == NIL) {
		ix->totals.used_bytes -= n->blocks * 512;
		ix->totals.inodes--;
	}
	ix->totals.names--;
	if (n->bits & F_DIR)
		ix->totals.dirs--;
	if (fix_parent)
		N(ix, n->parent)->bits--; /* the low bits count children */
	n->bits = F_FREE;
	n->key_next = ix->free_head;
	ix->free_head = id;
}

/*
 * Is node id below the doomed directory? Walks up to the first node whose answer is known
 * and writes the answer on the way down, so a sweep over all nodes costs O(nodes). The path
 * is kept in a heap array, never on the C stack.
 */
static bool doomed(struct dindex *ix, uint32_t id, uint32_t **path, size_t *cap)
{
	size_t depth = 0;
	bool dead;

	for (;;) {
		uint32_t b = N(ix, id)->bits;

		if (b & (F_LIVE | F_DEAD)) {
			dead = b & F_DEAD;
			break;
		}
		if (id == 0) {
			dead = false;
			break;
		}
		if (depth == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			uint32_t *p = realloc(*path, nc * sizeof(*p));

			if (!p)
				return false; /* caller sees ENOMEM through the cap check */
			*path = p;
			*cap = nc;
		}
		(*path)[depth++] = id;
		id = N(ix, id)->parent;
	}
	while (depth)
		N(ix, (*path)[--depth])->bits |= dead ? F_DEAD : F_LIVE;
	return dead;
}

static int subtree_drop(struct dindex *ix, uint32_t dir)
{
	uint32_t *path = NULL;
	size_t cap = 0;

	if ((N(ix, dir)->bits & CHILDREN_MASK) == 0) {
		node_drop(ix, dir, true);
		return 0;
	}
	N(ix, dir)->bits |= F_DEAD;
	for (uint32_t id = 1; id < ix->used; id++)
		if (!(N(ix, id)->bits & F_FREE))
			doomed(ix, id, &path, &cap);
	/* Children before their parent does not matter: a dead parent's count is not read. */
	for (uint32_t id = 1; id < ix->used; id++) {
		struct dnode *n = N(ix, id);

		if (n->bits & F_FREE)
			continue;
		if (n->bits & F_DEAD) {
			n->bits &= ~F_DEAD;
			node_drop(ix, id, id == dir);
		} else {
			n->bits &= ~F_LIVE;
		}
	}
	N(ix, 0)->bits &= ~(F_LIVE | F_DEAD);
	free(path);
	return 0;
}

/* All names of the inode of node id get the new size (they always agree). */
static void set_blocks(struct dindex *ix, uint32_t id, uint64_t blocks)
{
	uint64_t ino = N(ix, id)->ino;
	uint32_t first = find_ino(ix, ino);

	ix->totals.used_bytes += (blocks - N(ix, first)->blocks) * 512;
	for (id = first; id != NIL; id = N(ix, id)->ino_next)
		if (N(ix, id)->ino == ino)
			N(ix, id)->blocks = blocks;
}

void dindex__set_blocks(struct dindex *ix, uint64_t ino, uint64_t blocks)
{
	uint32_t id = find_ino(ix, ino);

	if (id != NIL)
		set_blocks(ix, id, blocks);
}

int dindex__link(struct dindex *ix, uint64_t parent_ino, const char *name, size_t len, uint64_t ino,
		 uint64_t blocks, bool is_dir, bool *new_dir)
{
	uint32_t parent = find_dir(ix, parent_ino), id, same;
	uint64_t key;
	struct dnode *n;

	*new_dir = false;
	if (parent == NIL)
		return -ENOENT;
	if (is_dir) {
		uint32_t self = find_dir(ix, ino);

		/*
		 * Re-stats come in any order: after "mv a/b b; mv a b/a", b/a may be applied while
		 * b is still indexed under a. Linking would make a cycle; the caller applies the
		 * other names first and tries again.
		 */
		for (uint32_t up = parent; self != NIL && self != 0; up = N(ix, up)->parent) {
			if (up == self)
				return -ELOOP;
			if (up == 0)
				break;
		}
	}
	key = name_key(parent_ino, name, len);
	id = find_key(ix, key);
	if (id != NIL) {
		if (N(ix, id)->ino == ino && !(N(ix, id)->bits & F_DIR) == !is_dir) {
			set_blocks(ix, id, blocks);
			return 0;
		}
		if (N(ix, id)->bits & F_DIR)
			subtree_drop(ix, id);
		else
			node_drop(ix, id, true);
	}
	same = find_ino(ix, ino);
	if (same != NIL && (N(ix, same)->bits & F_DIR) && is_dir && same != 0) {
		/* A directory seen under a new name was moved: re-key it, keep its subtree. */
		n = N(ix, same);
		hash_out(ix, same);
		N(ix, n->parent)->bits--;
		n->key = key;
		n->parent = parent;
		N(ix, parent)->bits++;
		hash_in(ix, same);
		set_blocks(ix, same, blocks);
		return 0;
	}
	if (same != NIL && ((N(ix, same)->bits & F_DIR) || is_dir)) {
		/* The inode number now names something else: the old one is gone. */
		if (same == 0)
			return -EINVAL; /* the root under its own tree: a bind mount loop */
		if (N(ix, same)->bits & F_DIR)
			subtree_drop(ix, same);
		else
			while ((same = find_ino(ix, ino)) != NIL)
				node_drop(ix, same, true);
		same = NIL;
	}
	id = node_alloc(ix);
	if (id == NIL)
		return -ENOMEM;
	/* Another name of an indexed inode: its size first, while its names still agree. */
	if (same != NIL)
		set_blocks(ix, same, blocks);
	n = N(ix, id);
	*n = (struct dnode){
	    .ino = ino, .blocks = blocks, .key = key, .parent = parent, .bits = is_dir ? F_DIR : 0};
	N(ix, parent)->bits++;
	ix->totals.names++;
	if (is_dir)
		ix->totals.dirs++;
	if (same == NIL) {
		ix->totals.used_bytes += blocks * 512;
		ix->totals.inodes++;
	}
	hash_in(ix, id);
	*new_dir = is_dir;
	return maybe_grow(ix);
}

int dindex__unlink(struct dindex *ix, uint64_t parent_ino, const char *name, size_t len)
{
	uint32_t id = find_key(ix, name_key(parent_ino, name, len));

	if (id == NIL)
		return 0;
	if (N(ix, id)->bits & F_DIR)
		return subtree_drop(ix, id);
	node_drop(ix, id, true);
	return 0;
}

void dindex__drop_ino(struct dindex *ix, uint64_t ino)
{
	uint32_t id;

	while ((id = find_ino(ix, ino)) != NIL && id != 0) {
		if (N(ix, id)->bits & F_DIR)
			subtree_drop(ix, id);
		else
			node_drop(ix, id, true);
	}
}

bool dindex__has_dir(const struct dindex *ix, uint64_t ino)
{
	return find_dir(ix, ino) != NIL;
}

bool dindex__has_ino(const struct dindex *ix, uint64_t ino)
{
	return find_ino(ix, ino) != NIL;
}

uint64_t dindex__lookup(const struct dindex *ix, uint64_t parent_ino, const char *name, size_t len)
{
	uint32_t id = find_key(ix, name_key(parent_ino, name, len));

	return id == NIL ? 0 : N(ix, id)->ino;
}

uint64_t dindex__root_ino(const struct dindex *ix)
{
	return N(ix, 0)->ino;
}

void dindex__totals(const struct dindex *ix, struct dindex_totals *out)
{
	*out = ix->totals;
}

size_t dindex__mem(const struct dindex *ix)
{
	return sizeof(*ix) + chunks_slots(ix->nchunks) * sizeof(struct dnode *) +
	       (size_t)ix->cap * sizeof(struct dnode) +
	       2 * (ix->by_key.mask + 1) * sizeof(uint32_t);
}
