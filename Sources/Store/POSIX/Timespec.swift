import Glibc

/// A point in time as seconds + nanoseconds since the Unix epoch (struct timespec).
public struct Timespec: Hashable, Sendable, Comparable {
    public var seconds: Int64
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    init(_ ts: timespec) {
        self.init(seconds: Int64(ts.tv_sec), nanoseconds: Int32(truncatingIfNeeded: ts.tv_nsec))
    }

    var cValue: timespec {
        timespec(tv_sec: Int(truncatingIfNeeded: seconds), tv_nsec: Int(nanoseconds))
    }

    public static func < (lhs: Timespec, rhs: Timespec) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }
}
