import Glibc

// Internal plumbing shared by the POSIX wrappers: EINTR retry, errno -> PosixError,
// NUL-checked C paths, and Linux constants the Glibc module does not import.
extension Posix {
    /// Linux values (x86_64 and aarch64) of constants hidden behind _GNU_SOURCE.
    static let O_NOATIME_FLAG: Int32 = 0o1000000
    static let SEEK_DATA_WHENCE: Int32 = 3
    static let SEEK_HOLE_WHENCE: Int32 = 4

    /// Passes the path to `body` as a C string; a path containing NUL throws EINVAL.
    @inline(__always) @discardableResult
    static func withCPath<R>(_ path: RawPath, _ operation: String,
                             _ body: (UnsafePointer<CChar>) throws -> R) throws -> R {
        guard !path.bytes.contains(0) else {
            throw PosixError(errno: EINVAL, operation: operation, path: path)
        }
        return try RawPath.withCString(path.bytes, body)
    }

    /// Runs a call that returns -1 and sets errno on failure, retrying EINTR.
    @inline(__always) @discardableResult
    static func check<T: FixedWidthInteger & SignedInteger>(_ operation: String, _ path: RawPath?,
                                                             _ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = Glibc.errno
            if code == EINTR { continue }
            throw PosixError(errno: code, operation: operation, path: path)
        }
    }

    /// Like `check`, but returns the errno instead of throwing (nil on success).
    @inline(__always)
    static func attempt<T: FixedWidthInteger & SignedInteger>(_ body: () -> T) -> (result: T, errno: Int32?) {
        while true {
            let result = body()
            if result != -1 { return (result, nil) }
            let code = Glibc.errno
            if code == EINTR { continue }
            return (result, code)
        }
    }

    /// close(2) without retry (on Linux the descriptor is gone even on EINTR).
    @inline(__always)
    static func closeDescriptor(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}
