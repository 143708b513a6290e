import Glibc

/// glibc malloc settings for a process that moves megabyte-sized buffers between threads.
public enum MemoryTuning {
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32

    /// Chunk buffers (up to 8 MiB) come from the heap and are reused: a 32 MiB mmap threshold
    /// keeps glibc from giving each one fresh pages (with the default dynamic threshold, or a
    /// low fixed one, every decrypted megabyte cost 256 page faults and an munmap — 40 % of the
    /// mount daemon's CPU on a large-file read). One arena: chunks are decrypted on prefetch
    /// threads and freed on request threads (or the other way round), and with two arenas the
    /// freed memory piled up in both (with glibc's default of 8 per core, RSS overshot
    /// --cache-size by 2x). Measured on the 1 GiB benchmark corpus: cold 192 MiB file
    /// 0.44 → 0.28 s and whole-snapshot tar 5.1 → 4.0 s for the threshold; peak RSS after tar +
    /// small files at --cache-size 256MiB 409–418 MiB with two arenas, 312–314 MiB with one
    /// (125 → 114 MiB at 64MiB), tar, cold-file and small-file times unchanged (2.44–2.60 s vs
    /// 2.69–2.73 s tar, interleaved runs).
    /// mallopt is not exported by Swift's Glibc module, hence dlsym.
    public static func apply() {
        mallopt(-3, 32 << 20)    // M_MMAP_THRESHOLD
        mallopt(-8, 1)           // M_ARENA_MAX
    }

    /// Restore: two malloc arenas for its three writer threads (glibc's default is 8 per
    /// core). Peak RSS restoring the 1 GiB benchmark corpus, 7 interleaved runs: 104–128 MiB
    /// with the default, 101–108 MiB with two; wall time unchanged (one arena: 99–106 MiB but
    /// 10 % slower, the threads then contend for its lock).
    public static func applyForRestore() {
        mallopt(-8, 2)           // M_ARENA_MAX
    }

    private static func mallopt(_ parameter: Int32, _ value: Int32) {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        _ = unsafeBitCast(sym, to: Mallopt.self)(parameter, value)
    }
}
