import Glibc

/// glibc malloc settings for a process that moves megabyte-sized buffers between threads.
public enum MemoryTuning {
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32

    /// A fixed mmap threshold returns large blocks to the kernel as soon as they are freed, and
    /// two arenas keep freed memory from piling up per thread (the mount daemon's RSS otherwise
    /// overshot --cache-size by 2x). mallopt is not exported by Swift's Glibc module, hence dlsym.
    public static func apply() {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(sym, to: Mallopt.self)
        _ = mallopt(-3, 256 << 10)   // M_MMAP_THRESHOLD
        _ = mallopt(-8, 2)           // M_ARENA_MAX
    }
}
