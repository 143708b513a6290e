// libfuse 3 low-level API. Imported by exactly one Swift file: Sources/FS/FuseBridge.swift.
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// fuse_session_new takes sizeof(*op) and fuse_session_loop_mt is a versioned macro:
// Swift can import neither form, so they are wrapped here.
static inline struct fuse_session *cfuse3_session_new(int argc, char **argv,
        const struct fuse_lowlevel_ops *op, void *userdata) {
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_session *se = fuse_session_new(&args, op, sizeof(*op), userdata);
    fuse_opt_free_args(&args);
    return se;
}

static inline int cfuse3_loop_mt(struct fuse_session *se, unsigned max_threads) {
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    if (!cfg) return -1;
    fuse_loop_cfg_set_max_threads(cfg, max_threads);
    fuse_loop_cfg_set_idle_threads(cfg, max_threads);
    int rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    return rc;
}

// The fuse_file_info bitfields cannot be set from Swift.
static inline void cfuse3_fi_set_keep_cache(struct fuse_file_info *fi) { fi->keep_cache = 1; }
static inline void cfuse3_fi_set_cache_readdir(struct fuse_file_info *fi) { fi->cache_readdir = 1; fi->keep_cache = 1; }

// Returns 1 when the kernel can skip open/release for files whose open says ENOSYS.
static inline int cfuse3_conn_init(struct fuse_conn_info *conn) {
    conn->max_readahead = 1u << 20;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    return (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) ? 1 : 0;
}
