import Glibc

// Extended attributes (user.*, trusted.*, security.*, system.posix_acl_*), never following symlinks.
extension Posix {
    /// All extended attributes (l* variants), sorted bytewise by name. ENOTSUP/EOPNOTSUPP -> [].
    /// An attribute removed between listing and reading is skipped.
    public static func extendedAttributes(_ path: RawPath) throws -> [(name: [UInt8], value: [UInt8])] {
        try withCPath(path, "llistxattr") { cPath in
            guard let calls = XattrCalls.shared else { return [] }
            guard let list = try listAttributeNames(calls, cPath, path) else { return [] }
            var result: [(name: [UInt8], value: [UInt8])] = []
            for name in list.split(separator: 0, omittingEmptySubsequences: true) {
                let name = Array(name)
                guard let value = try attributeValue(calls, cPath, path, name) else { continue }
                result.append((name, value))
            }
            result.sort { $0.name.lexicographicallyPrecedes($1.name) }
            return result
        }
    }

    /// The value of one attribute, or nil if it does not exist (ENODATA) or xattrs are unsupported.
    public static func extendedAttribute(_ path: RawPath, name: [UInt8]) throws -> [UInt8]? {
        guard let calls = XattrCalls.shared else { return nil }
        return try withCPath(path, "lgetxattr") { cPath in
            try attributeValue(calls, cPath, path, name)
        }
    }

    /// lsetxattr (creates or replaces).
    public static func setExtendedAttribute(_ path: RawPath, name: [UInt8], value: [UInt8]) throws {
        guard !name.contains(0) else { throw PosixError(errno: EINVAL, operation: "lsetxattr", path: path) }
        let calls = try XattrCalls.get("lsetxattr", path)
        try withCPath(path, "lsetxattr") { cPath in
            try RawPath.withCString(name) { cName in
                try value.withUnsafeBytes { raw in
                    try check("lsetxattr", path) { calls.lsetxattr(cPath, cName, raw.baseAddress, raw.count, 0) }
                }
            }
        }
    }

    /// lremovexattr.
    public static func removeExtendedAttribute(_ path: RawPath, name: [UInt8]) throws {
        guard !name.contains(0) else { throw PosixError(errno: EINVAL, operation: "lremovexattr", path: path) }
        let calls = try XattrCalls.get("lremovexattr", path)
        try withCPath(path, "lremovexattr") { cPath in
            try RawPath.withCString(name) { cName in
                try check("lremovexattr", path) { calls.lremovexattr(cPath, cName) }
            }
        }
    }

    /// NUL-separated name list; nil if the filesystem does not support xattrs.
    private static func listAttributeNames(_ calls: XattrCalls, _ cPath: UnsafePointer<CChar>, _ path: RawPath) throws -> [UInt8]? {
        while true {
            let (size, sizeError) = attempt { calls.llistxattr(cPath, nil, 0) }
            if let code = sizeError {
                if code == ENOTSUP || code == EOPNOTSUPP { return nil }
                throw PosixError(errno: code, operation: "llistxattr", path: path)
            }
            if size == 0 { return [] }
            var buffer = [UInt8](repeating: 0, count: size)
            let (length, error) = buffer.withUnsafeMutableBytes { raw in
                attempt { calls.llistxattr(cPath, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count) }
            }
            if let code = error {
                if code == ERANGE { continue }   // grew meanwhile
                if code == ENOTSUP || code == EOPNOTSUPP { return nil }
                throw PosixError(errno: code, operation: "llistxattr", path: path)
            }
            return Array(buffer[..<length])
        }
    }

    private static func attributeValue(_ calls: XattrCalls, _ cPath: UnsafePointer<CChar>, _ path: RawPath, _ name: [UInt8]) throws -> [UInt8]? {
        guard !name.contains(0) else { throw PosixError(errno: EINVAL, operation: "lgetxattr", path: path) }
        return try RawPath.withCString(name) { cName in
            while true {
                let (size, sizeError) = attempt { calls.lgetxattr(cPath, cName, nil, 0) }
                if let code = sizeError {
                    if code == ENODATA || code == ENOTSUP || code == EOPNOTSUPP { return nil }
                    throw PosixError(errno: code, operation: "lgetxattr", path: path)
                }
                var buffer = [UInt8](repeating: 0, count: max(size, 1))
                let (length, error) = buffer.withUnsafeMutableBytes { raw in
                    attempt { calls.lgetxattr(cPath, cName, raw.baseAddress, size) }
                }
                if let code = error {
                    if code == ERANGE { continue }
                    if code == ENODATA || code == ENOTSUP || code == EOPNOTSUPP { return nil }
                    throw PosixError(errno: code, operation: "lgetxattr", path: path)
                }
                return Array(buffer[..<length])
            }
        }
    }
}
