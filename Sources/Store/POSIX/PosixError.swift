import Glibc

/// A failed system call: errno, the operation ("open", "lstat", ...) and the path involved.
public struct PosixError: Error, CustomStringConvertible, Equatable {
    public let errno: Int32
    public let operation: String
    public let path: RawPath?

    public init(errno: Int32, operation: String, path: RawPath?) {
        self.errno = errno
        self.operation = operation
        self.path = path
    }

    /// "open /etc/shadow: Permission denied" (or "open: Permission denied" without a path).
    /// The path is escaped as in `RawPath.description`.
    public var description: String {
        var text = operation
        if let path { text += " " + path.description }
        return text + ": " + PosixError.message(for: errno)
    }

    /// strerror text for an errno value.
    public static func message(for code: Int32) -> String {
        // glibc's strerror returns static strings for known codes (thread-safe since 2.32);
        // unknown codes fall back to a number.
        guard let text = strerror(code) else { return "Unknown error \(code)" }
        return String(cString: text)
    }
}
