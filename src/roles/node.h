/*
 * node.h - what the roles of one msspd node share at run time.
 *
 * struct node_worker is the per-thread context of the node's worker pool
 * (util/pool.h): every job that touches the store gets one, with the
 * thread's own store handle (store.h: one connection per thread).
 */
#ifndef MSSP_ROLES_NODE_H
#define MSSP_ROLES_NODE_H

struct store;

struct node_worker {
	struct store *nw_store; /* this pool thread's own handle */
	unsigned nw_idx;	/* pool thread index             */
};

#endif
