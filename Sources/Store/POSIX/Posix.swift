import Glibc

/// Thin, EINTR-safe wrappers over the POSIX calls backup and restore need.
/// Paths are raw bytes; errors are `PosixError`. Nothing here follows a final symlink
/// unless stated otherwise.
public enum Posix {
    // MARK: Inspection

    public static func lstat(_ path: RawPath) throws -> FileStatus {
        var st = Glibc.stat()
        try withCPath(path, "lstat") { cPath in
            try check("lstat", path) { Glibc.lstat(cPath, &st) }
        }
        guard let status = FileStatus(st) else { throw PosixError(errno: EINVAL, operation: "lstat", path: path) }
        return status
    }

    public static func fstat(_ fd: Int32) throws -> FileStatus {
        try fstat(fd, path: nil)
    }

    static func fstat(_ fd: Int32, path: RawPath?) throws -> FileStatus {
        var st = Glibc.stat()
        try check("fstat", path) { Glibc.fstat(fd, &st) }
        guard let status = FileStatus(st) else { throw PosixError(errno: EINVAL, operation: "fstat", path: path) }
        return status
    }

    /// Entry names (raw bytes) sorted bytewise, without "." and "..".
    /// The directory is opened with O_NOFOLLOW: a symlink (even to a directory) throws ELOOP/ENOTDIR.
    public static func readDirectory(_ path: RawPath) throws -> [[UInt8]] {
        try withDirectory(path) { dir, _ in try readNames(dir, path) }
    }

    /// Opens `path` as a directory (O_NOFOLLOW) for `body`, with its DIR* and descriptor.
    private static func withDirectory<R>(_ path: RawPath, _ body: (OpaquePointer, Int32) throws -> R) throws -> R {
        let fd = try withCPath(path, "open") { cPath in
            try check("open", path) { Glibc.open(cPath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        }
        guard let dir = fdopendir(fd) else {
            let code = Glibc.errno
            closeDescriptor(fd)
            throw PosixError(errno: code, operation: "opendir", path: path)
        }
        defer { closedir(dir) }   // also closes fd
        return try body(dir, fd)
    }

    /// The names readdir(3) returns, sorted bytewise, without "." and "..".
    private static func readNames(_ dir: OpaquePointer, _ path: RawPath) throws -> [[UInt8]] {
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        var names: [[UInt8]] = []
        while true {
            Glibc.errno = 0
            guard let entry = readdir(dir) else {
                let code = Glibc.errno
                if code == 0 { break }
                if code == EINTR { continue }
                throw PosixError(errno: code, operation: "readdir", path: path)
            }
            let namePointer = (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: UInt8.self)
            let name = Array(UnsafeBufferPointer(start: namePointer, count: strlen(UnsafeRawPointer(namePointer).assumingMemoryBound(to: CChar.self))))
            if name == [RawPath.dot] || name == [RawPath.dot, RawPath.dot] { continue }
            names.append(name)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        return names
    }

    /// The entries of a directory in bytewise name order (without "." and ".."), each with its
    /// lstat result, read through one open descriptor: `fstatat` relative to it skips the
    /// path walk from "/" that `lstat` of a full path pays for every entry. `skip` drops names
    /// before they are looked at (exclusions). Throws when the directory itself cannot be read.
    public static func readDirectoryStatus(_ path: RawPath, skip: ([UInt8]) -> Bool = { _ in false })
        throws -> [(name: [UInt8], status: Result<FileStatus, PosixError>)] {
        try withDirectory(path) { dir, fd in
            try readNames(dir, path).filter { !skip($0) }.map { name in
                var st = Glibc.stat()
                let (_, code) = RawPath.withCString(name) { cName in
                    attempt { fstatat(fd, cName, &st, AT_SYMLINK_NOFOLLOW) }
                }
                if let code { return (name, .failure(PosixError(errno: code, operation: "lstat", path: path.appending(name)))) }
                guard let status = FileStatus(st) else {
                    return (name, .failure(PosixError(errno: EINVAL, operation: "lstat", path: path.appending(name))))
                }
                return (name, .success(status))
            }
        }
    }

    /// The target of a symlink, as raw bytes.
    public static func readLink(_ path: RawPath) throws -> [UInt8] {
        try withCPath(path, "readlink") { cPath in
            var capacity = 1024
            while true {
                var buffer = [UInt8](repeating: 0, count: capacity)
                let length = try buffer.withUnsafeMutableBytes { raw in
                    try check("readlink", path) {
                        Glibc.readlink(cPath, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
                    }
                }
                if length < capacity { return Array(buffer[..<length]) }
                capacity *= 2   // possibly truncated
            }
        }
    }
}
