import Glibc

/// A pthread mutex in a class (stable address). Used on hot paths from plain threads.
public final class Mutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    public init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    public func lock() { pthread_mutex_lock(&m) }
    public func unlock() { pthread_mutex_unlock(&m) }
    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}

/// A counting condition: wait until a predicate over guarded state holds.
public final class Condition: @unchecked Sendable {
    private var m = pthread_mutex_t()
    private var c = pthread_cond_t()
    public init() {
        pthread_mutex_init(&m, nil)
        pthread_cond_init(&c, nil)
    }
    deinit {
        pthread_cond_destroy(&c)
        pthread_mutex_destroy(&m)
    }
    public func lock() { pthread_mutex_lock(&m) }
    public func unlock() { pthread_mutex_unlock(&m) }
    public func wait() { pthread_cond_wait(&c, &m) }
    public func broadcast() { pthread_cond_broadcast(&c) }
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }

    /// Waits until signalled or `deadline` (CLOCK_REALTIME); true on timeout. Call with the lock held.
    public func timedWait(until deadline: timespec) -> Bool {
        var d = deadline
        return withUnsafeMutablePointer(to: &d) { pthread_cond_timedwait(&c, &m, $0) } == ETIMEDOUT
    }

    /// The CLOCK_REALTIME instant `seconds` from now, for `timedWait(until:)`.
    public static func deadline(in seconds: Double) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let ns = Int(now.tv_nsec) + Int((seconds - seconds.rounded(.down)) * 1e9)
        return timespec(tv_sec: now.tv_sec + Int(seconds) + ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000)
    }
}
