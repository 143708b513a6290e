// libfuse 3 low-level API. Imported by exactly one Swift file: Sources/FS/FuseBridge.swift.
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

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

// Puts `size` bytes of file `ino` at offset 0 into the kernel's page cache (FUSE_NOTIFY_STORE).
// FUSE_BUFVEC_INIT is a macro Swift cannot import. Returns 0 or a negative errno (-ENOENT
// when the kernel has no inode for `ino`).
static inline int cfuse3_notify_store(struct fuse_session *se, fuse_ino_t ino, const void *data, size_t size) {
    struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(size);
    bufv.buf[0].mem = (void *)data;
    return fuse_lowlevel_notify_store(se, ino, 0, &bufv, 0);
}

// Stopping on a signal. libfuse's own handlers end the loop at once, and a worker that reads a
// request after that drops it unanswered; a page-cache push waiting for that read's page would
// then block forever, and with it the process. So SIGINT, SIGTERM and SIGHUP only write their
// number to a pipe, and a thread of ours stops the session in order (FuseSession.run). As in
// libfuse, a signal that is not at SIG_DFL (a shell ignores SIGINT for background jobs) is left
// alone. SIGUSR2 gets a handler that does nothing: sent to the loop's thread, it interrupts the
// loop's wait so that the loop sees the session has exited.
// State: the pipe's two ends, then one "handler installed" flag per signal. (A function-local
// static: file-scope statics in this header are not emitted into the Swift module.)
static inline int *cfuse3_signal_state(void) {
    static int state[5] = { -1, -1, 0, 0, 0 };
    return state;
}
#define cfuse3_signal_fds (cfuse3_signal_state())
#define cfuse3_signals_taken (cfuse3_signal_state() + 2)

static void cfuse3_on_signal(int sig) {
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    ssize_t n = write(cfuse3_signal_fds[1], &c, 1);
    (void)n;
    errno = saved;
}

static void cfuse3_on_wake(int sig) { (void)sig; }

// Returns 0, or -1 when the pipe cannot be made.
static inline int cfuse3_signals_install(void) {
    static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
    if (cfuse3_signal_fds[0] < 0) {
        if (pipe2(cfuse3_signal_fds, O_CLOEXEC) != 0) return -1;
        fcntl(cfuse3_signal_fds[1], F_SETFL, O_NONBLOCK);   // a burst of signals never blocks
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) {
        struct sigaction old;
        cfuse3_signals_taken[i] = 0;
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL) continue;
        sa.sa_handler = cfuse3_on_signal;
        cfuse3_signals_taken[i] = sigaction(sigs[i], &sa, NULL) == 0;
    }
    sa.sa_handler = cfuse3_on_wake;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

// Blocks until a signal arrives (its number) or cfuse3_signals_stop is called (0).
static inline int cfuse3_signals_wait(void) {
    unsigned char c;
    for (;;) {
        ssize_t n = read(cfuse3_signal_fds[0], &c, 1);
        if (n == 1) return c;
        if (n < 0 && errno == EINTR) continue;
        return 0;
    }
}

// Wakes cfuse3_signals_wait with 0 and puts the taken signals back to SIG_DFL.
static inline void cfuse3_signals_stop(void) {
    static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
    for (int i = 0; i < 3; i++) if (cfuse3_signals_taken[i]) signal(sigs[i], SIG_DFL);
    unsigned char zero = 0;
    ssize_t n = write(cfuse3_signal_fds[1], &zero, 1);
    (void)n;
}
