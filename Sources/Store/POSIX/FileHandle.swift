import Glibc
import CLinux

/// An open file descriptor, closed in deinit (and by close()).
/// Not thread-safe: use one handle from one thread at a time.
/// Every operation after close() throws EBADF (the descriptor number may have been reused).
public final class FileHandle {
    public let fd: Int32
    public let path: RawPath
    private var isClosed = false

    init(fd: Int32, path: RawPath) {
        self.fd = fd
        self.path = path
    }

    deinit { close() }

    /// O_RDONLY|O_NOFOLLOW|O_CLOEXEC, plus O_NOATIME when permitted (retry without it on EPERM);
    /// refuses non-regular files: symlink -> ELOOP, directory -> EISDIR, fifo/device/socket -> EINVAL
    /// (operation "open"). The type is checked with lstat before opening (so a device is never
    /// opened) and again with fstat after opening with O_NONBLOCK (so a FIFO swapped in
    /// meanwhile cannot block); O_NONBLOCK is cleared afterwards.
    public static func openForReading(_ path: RawPath) throws -> FileHandle {
        try openRegularFile(path, lstatKind: nil).handle
    }

    /// `openForReading`, also returning the fstat taken after opening. `lstatKind`: what an
    /// lstat of `path` moments before said (a backup walk's); `.file` stands in for the lstat
    /// before opening, any other kind is refused at once, nil does the lstat here.
    public static func openRegularFile(_ path: RawPath, lstatKind: NodeKind?) throws -> (handle: FileHandle, status: FileStatus) {
        try Self.requireRegular(lstatKind ?? Posix.lstat(path).kind, path)
        let base = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK
        var statusFlags = Posix.O_NOATIME_FLAG
        let fd = try Posix.withCPath(path, "open") { cPath -> Int32 in
            let first = Posix.attempt { Glibc.open(cPath, base | Posix.O_NOATIME_FLAG) }
            if first.errno == nil { return first.result }
            if first.errno != EPERM {
                throw PosixError(errno: first.errno!, operation: "open", path: path)
            }
            statusFlags = 0
            return try Posix.check("open", path) { Glibc.open(cPath, base) }
        }
        let handle = FileHandle(fd: fd, path: path)   // closes fd if anything below throws
        let status = try handle.status()
        try Self.requireRegular(status.kind, path)
        // F_SETFL sets the file status flags to exactly these: O_NONBLOCK off, O_NOATIME as opened.
        try Posix.check("fcntl", path) { fcntl(fd, F_SETFL, statusFlags) }
        return (handle, status)
    }

    /// O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC with the given mode (subject to umask).
    public static func create(_ path: RawPath, permissions: UInt32) throws -> FileHandle {
        let fd = try Posix.withCPath(path, "open") { cPath in
            try Posix.check("open", path) {
                Glibc.open(cPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(permissions & 0o7777))
            }
        }
        return FileHandle(fd: fd, path: path)
    }

    /// O_WRONLY|O_NOFOLLOW|O_CLOEXEC on an existing file (a symlink at `path` fails with ELOOP).
    public static func openForWriting(_ path: RawPath) throws -> FileHandle {
        let fd = try Posix.withCPath(path, "open") { cPath in
            try Posix.check("open", path) { Glibc.open(cPath, O_WRONLY | O_NOFOLLOW | O_CLOEXEC) }
        }
        return FileHandle(fd: fd, path: path)
    }

    private static func requireRegular(_ kind: NodeKind, _ path: RawPath) throws {
        switch kind {
        case .file: return
        case .symlink: throw PosixError(errno: ELOOP, operation: "open", path: path)
        case .directory: throw PosixError(errno: EISDIR, operation: "open", path: path)
        default: throw PosixError(errno: EINVAL, operation: "open", path: path)
        }
    }

    // MARK: I/O

    /// Reads up to buffer.count bytes (retrying EINTR); returns 0 at EOF.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try ensureOpen("read")
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        return try Posix.check("read", path) { Glibc.read(fd, base, buffer.count) }
    }

    /// Reads up to buffer.count bytes at offset (no change to the file position); 0 at EOF.
    public func pread(into buffer: UnsafeMutableRawBufferPointer, offset: Int64) throws -> Int {
        try ensureOpen("pread")
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        return try Posix.check("pread", path) { Glibc.pread(fd, base, buffer.count, off_t(offset)) }
    }

    /// Reads exactly count bytes at offset; a short read (EOF first, e.g. the file shrank)
    /// throws PosixError(errno: ENODATA, operation: "pread").
    public func readExactly(count: Int, at offset: Int64) throws -> [UInt8] {
        precondition(count >= 0, "negative count")
        // Uninitialized storage: every byte is overwritten by pread or the call throws.
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            var done = 0
            while done < count {
                let n = try pread(into: UnsafeMutableRawBufferPointer(rebasing: raw[done...]),
                                  offset: offset + Int64(done))
                if n == 0 { throw PosixError(errno: ENODATA, operation: "pread", path: path) }
                done += n
            }
            initialized = count
        }
    }

    /// Writes all bytes at the file position (retries partial writes and EINTR).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try ensureOpen("write")
        var done = 0
        while done < bytes.count {
            let n = try Posix.check("write", path) { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }
            if n == 0 { throw PosixError(errno: EIO, operation: "write", path: path) }
            done += n
        }
    }

    /// Writes all bytes at offset (retries partial writes and EINTR).
    public func pwrite(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        try ensureOpen("pwrite")
        var done = 0
        while done < bytes.count {
            let n = try Posix.check("pwrite", path) {
                Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + Int64(done)))
            }
            if n == 0 { throw PosixError(errno: EIO, operation: "pwrite", path: path) }
            done += n
        }
    }

    /// Reserves blocks for the first `size` bytes of the file without changing its size
    /// (fallocate with FALLOC_FL_KEEP_SIZE: a write that stops early leaves a short file, not
    /// one padded with zeros). Best effort: false where the file system cannot (EOPNOTSUPP)
    /// or on any other error; the writes that follow report real problems such as ENOSPC.
    @discardableResult
    public func preallocate(_ size: Int64) -> Bool {
        guard fd >= 0, size > 0 else { return false }
        return Posix.attempt { CLinux.fallocate(fd, FileHandle.keepSize, off_t(0), off_t(size)) }.errno == nil
    }
    private static let keepSize: Int32 = 0x01   // FALLOC_FL_KEEP_SIZE (linux/falloc.h)

    /// ftruncate (extending creates a hole).
    public func truncate(_ size: Int64) throws {
        try ensureOpen("ftruncate")
        try Posix.check("ftruncate", path) { Glibc.ftruncate(fd, off_t(size)) }
    }

    /// fchown (restore: before permissions, since it clears setuid/setgid bits).
    public func setOwner(uid: UInt32, gid: UInt32) throws {
        try ensureOpen("fchown")
        try Posix.check("fchown", path) { Glibc.fchown(fd, uid_t(uid), gid_t(gid)) }
    }

    /// fchmod with the permission bits of `permissions` (including setuid/setgid/sticky).
    public func setPermissions(_ permissions: UInt32) throws {
        try ensureOpen("fchmod")
        try Posix.check("fchmod", path) { Glibc.fchmod(fd, mode_t(permissions & 0o7777)) }
    }

    /// futimens: access and modification time with nanoseconds (restore: last, after all writes).
    public func setTimes(atime: Timespec, mtime: Timespec) throws {
        try ensureOpen("futimens")
        var times = (atime.cValue, mtime.cValue)
        try withUnsafePointer(to: &times) { pair in
            try pair.withMemoryRebound(to: timespec.self, capacity: 2) { pointer in
                _ = try Posix.check("futimens", path) { Glibc.futimens(fd, pointer) }
            }
        }
    }

    /// fsync.
    public func sync() throws {
        try ensureOpen("fsync")
        try Posix.check("fsync", path) { Glibc.fsync(fd) }
    }

    /// fstat.
    public func status() throws -> FileStatus {
        try ensureOpen("fstat")
        return try Posix.fstat(fd, path: path)
    }

    /// Data extents via SEEK_DATA/SEEK_HOLE (offset, length), ascending, clipped to [0, size).
    /// A file with no holes yields one extent [0,size); if the filesystem doesn't support it,
    /// also one extent. size 0 (or a file that is all hole) yields []. The file position is restored.
    public func dataExtents(size: Int64) throws -> [(offset: Int64, length: Int64)] {
        try ensureOpen("lseek")
        guard size > 0 else { return [] }
        let saved = try Posix.check("lseek", path) { lseek(fd, 0, SEEK_CUR) }
        defer { _ = lseek(fd, saved, SEEK_SET) }
        var extents: [(offset: Int64, length: Int64)] = []
        var position: Int64 = 0
        while position < size {
            let data = Posix.attempt { lseek(fd, off_t(position), Posix.SEEK_DATA_WHENCE) }
            if let code = data.errno {
                if code == ENXIO { break }   // no data at or after position
                if code == EINVAL || code == EOPNOTSUPP {   // unsupported: treat the rest as data
                    extents.append((position, size - position))
                    break
                }
                throw PosixError(errno: code, operation: "lseek", path: path)
            }
            let start = Int64(data.result)
            if start >= size { break }
            let hole = Posix.attempt { lseek(fd, off_t(start), Posix.SEEK_HOLE_WHENCE) }
            var end = hole.errno == nil ? Int64(hole.result) : size
            if end > size || end <= start { end = size }
            if let last = extents.last, last.offset + last.length == start {
                extents[extents.count - 1].length += end - start
            } else {
                extents.append((start, end - start))
            }
            position = end
        }
        return extents
    }

    /// Closes the descriptor (idempotent; never retried on EINTR).
    public func close() {
        if isClosed { return }
        isClosed = true
        Posix.closeDescriptor(fd)
    }

    private func ensureOpen(_ operation: String) throws {
        if isClosed { throw PosixError(errno: EBADF, operation: operation, path: path) }
    }
}

/// Unambiguous name for `Store.FileHandle` in files that also see `Foundation.FileHandle`
/// (e.g. anything importing XCTest or Foundation together with Store).
public typealias PosixFileHandle = FileHandle
