// Entry points of libfuse3 that are function-like macros, hence invisible to Swift.
#ifndef CFUSESHIM_H
#define CFUSESHIM_H

struct fuse_session;

/// Runs the multithreaded session loop (fuse_session_loop_mt is a macro over a versioned symbol).
/// max_threads bounds the worker pool; clone_fd gives each worker its own /dev/fuse descriptor.
int cfuse_session_loop_mt(struct fuse_session *se, int clone_fd, unsigned int max_threads);

#endif
