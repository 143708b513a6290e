import Glibc

/// A filesystem path as raw bytes (no NUL). Never lossy: names that are not valid
/// UTF-8 (or that contain newlines, spaces, ...) round-trip exactly.
///
/// A path containing a NUL byte cannot be handed to the kernel; every `Posix` /
/// `FileHandle` call rejects such a path with `PosixError(errno: EINVAL)`, and
/// `withCString` traps on it (it cannot throw).
public struct RawPath: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(_ string: String) {
        self.bytes = Array(string.utf8)
    }

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// `nil` if `bytes` contains a NUL byte (use for untrusted input, e.g. archive contents).
    public init?(validating bytes: [UInt8]) {
        if bytes.contains(0) { return nil }
        self.bytes = bytes
    }

    /// True if the path can be passed to the kernel (non-empty, no NUL byte).
    public var isValid: Bool { !bytes.isEmpty && !bytes.contains(0) }

    // MARK: Composition

    /// Appends `component` with exactly one "/" in between ("/" + "etc" = "/etc",
    /// "a/" + "b" = "a/b"). An empty path yields the component itself; an empty
    /// component yields `self`.
    public func appending(_ component: [UInt8]) -> RawPath {
        if component.isEmpty { return self }
        if bytes.isEmpty { return RawPath(bytes: component) }
        var result = bytes
        let endsWithSlash = result.last == RawPath.slash
        let startsWithSlash = component.first == RawPath.slash
        if endsWithSlash && startsWithSlash {
            result.append(contentsOf: component.drop(while: { $0 == RawPath.slash }))
        } else {
            if !endsWithSlash && !startsWithSlash { result.append(RawPath.slash) }
            result.append(contentsOf: component)
        }
        return RawPath(bytes: result)
    }

    public func appending(_ component: String) -> RawPath {
        appending(Array(component.utf8))
    }

    // MARK: Decomposition (lexical)

    /// Non-empty components between slashes: "/a/b" -> ["a","b"], "a//b/" -> ["a","b"].
    /// "." and ".." are kept (use `normalizedAbsolute()` to resolve them).
    public var components: [[UInt8]] {
        bytes.split(separator: RawPath.slash, omittingEmptySubsequences: true).map(Array.init)
    }

    /// The last component ("/a/b/" -> "b"); empty for "/" and "".
    public var lastComponent: [UInt8] {
        var end = bytes.endIndex
        while end > bytes.startIndex && bytes[end - 1] == RawPath.slash { end -= 1 }
        var start = end
        while start > bytes.startIndex && bytes[start - 1] != RawPath.slash { start -= 1 }
        return Array(bytes[start..<end])
    }

    /// Lexical parent: "/a/b" -> "/a", "/a" -> "/", "/" -> "/", "a/b" -> "a", "a" -> ".", "" -> ".".
    public var parent: RawPath {
        var end = bytes.endIndex
        while end > bytes.startIndex && bytes[end - 1] == RawPath.slash { end -= 1 }
        if end == bytes.startIndex {
            return bytes.isEmpty ? RawPath(bytes: [RawPath.dot]) : RawPath(bytes: [RawPath.slash])
        }
        while end > bytes.startIndex && bytes[end - 1] != RawPath.slash { end -= 1 }
        if end == bytes.startIndex { return RawPath(bytes: [RawPath.dot]) }
        while end > bytes.startIndex && bytes[end - 1] == RawPath.slash { end -= 1 }
        if end == bytes.startIndex { return RawPath(bytes: [RawPath.slash]) }
        return RawPath(bytes: Array(bytes[..<end]))
    }

    public var isAbsolute: Bool { bytes.first == RawPath.slash }

    /// Lexically normalized absolute path: resolves "." and "..", collapses "//",
    /// strips trailing "/" (relative paths are made absolute against the cwd).
    /// ".." at the root stays at the root. Symlinks are not resolved. If the cwd
    /// cannot be determined (e.g. it was deleted), "/" is used in its place.
    public func normalizedAbsolute() -> RawPath {
        var input: [UInt8]
        if isAbsolute {
            input = bytes
        } else {
            input = RawPath.currentDirectoryBytes() ?? [RawPath.slash]
            input.append(RawPath.slash)
            input.append(contentsOf: bytes)
        }
        var stack: [ArraySlice<UInt8>] = []
        for part in input.split(separator: RawPath.slash, omittingEmptySubsequences: true) {
            if part.count == 1 && part.first == RawPath.dot { continue }
            if part.count == 2 && part.first == RawPath.dot && part.last == RawPath.dot {
                if !stack.isEmpty { stack.removeLast() }
                continue
            }
            stack.append(part)
        }
        if stack.isEmpty { return RawPath(bytes: [RawPath.slash]) }
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        for part in stack {
            out.append(RawPath.slash)
            out.append(contentsOf: part)
        }
        return RawPath(bytes: out)
    }

    // MARK: C interop

    /// Calls `body` with a NUL-terminated copy of the path.
    /// Precondition: the path contains no NUL byte (checked; the `Posix` and
    /// `FileHandle` APIs throw EINVAL instead of reaching this).
    public func withCString<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        precondition(!bytes.contains(0), "RawPath contains a NUL byte")
        return try RawPath.withCString(bytes, body)
    }

    /// NUL-terminates arbitrary bytes (which must not contain NUL) for a C call.
    static func withCString<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        var terminated = bytes
        terminated.append(0)
        return try terminated.withUnsafeBufferPointer { buffer in
            try buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { try body($0) }
        }
    }

    /// The process's current directory as raw bytes, or nil.
    static func currentDirectoryBytes() -> [UInt8]? {
        var capacity = 4096
        while capacity <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: capacity)
            let ok = buffer.withUnsafeMutableBufferPointer { getcwd($0.baseAddress, $0.count) != nil }
            if ok {
                let length = buffer.firstIndex(of: 0) ?? buffer.count
                return buffer[..<length].map { UInt8(bitPattern: $0) }
            }
            if Glibc.errno != ERANGE { return nil }
            capacity *= 2
        }
        return nil
    }

    // MARK: Protocols

    public static func < (lhs: RawPath, rhs: RawPath) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    /// For messages only. Valid UTF-8 is shown as is; invalid bytes and other control
    /// characters as \xNN; newline, tab and CR as \n, \t, \r; a backslash as \\
    /// (so the rendering is unambiguous).
    public var description: String { RawPath.escape(bytes) }

    /// Escapes arbitrary bytes the way `description` does (also used for xattr names etc.).
    public static func escape(_ bytes: [UInt8]) -> String {
        var out = ""
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var position = 0
        loop: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                position += encoded.count
                switch scalar.value {
                case 0x0A: out += "\\n"
                case 0x09: out += "\\t"
                case 0x0D: out += "\\r"
                case 0x5C: out += "\\\\"
                case 0..<0x20, 0x7F: out += hexEscape(UInt8(scalar.value))
                default: out.unicodeScalars.append(scalar)
                }
            case .error(let length):
                for byte in bytes[position..<(position + length)] { out += hexEscape(byte) }
                position += length
            case .emptyInput:
                break loop
            }
        }
        return out
    }

    private static func hexEscape(_ byte: UInt8) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
        return "\\x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)])
    }

    static let slash: UInt8 = 0x2F
    static let dot: UInt8 = 0x2E
}
