import Glibc

// Restore side. All of these act on the path itself, never following a final symlink.
// Modes passed to mkdir/mknod/open are subject to the process umask: restore code should
// call setPermissions afterwards. Suggested order per node: content, setOwner (lchown
// clears setuid/setgid), extended attributes (ACLs rewrite group bits), setPermissions,
// setTimes (last: everything else touches ctime/mtime of the parent or node).
extension Posix {
    /// mkdir; EEXIST on an existing directory is not an error (its mode is left alone).
    public static func makeDirectory(_ path: RawPath, permissions: UInt32) throws {
        let failure = try withCPath(path, "mkdir") { cPath in
            attempt { Glibc.mkdir(cPath, mode_t(permissions & 0o7777)) }.errno
        }
        guard let code = failure else { return }
        if code == EEXIST, let status = try? lstat(path), status.kind == .directory { return }
        throw PosixError(errno: code, operation: "mkdir", path: path)
    }

    /// symlink(target, path). The target is stored verbatim (raw bytes, may dangle).
    public static func makeSymlink(_ path: RawPath, target: [UInt8]) throws {
        guard !target.contains(0) else { throw PosixError(errno: EINVAL, operation: "symlink", path: path) }
        try withCPath(path, "symlink") { cPath in
            try RawPath.withCString(target) { cTarget in
                try check("symlink", path) { Glibc.symlink(cTarget, cPath) }
            }
        }
    }

    /// Creates `path` as a hard link to `existing` (a symlink `existing` is linked itself, not its target).
    public static func makeHardLink(_ path: RawPath, existing: RawPath) throws {
        try withCPath(existing, "link") { cExisting in
            try withCPath(path, "link") { cPath in
                try check("link", path) { Glibc.linkat(AT_FDCWD, cExisting, AT_FDCWD, cPath, 0) }
            }
        }
    }

    /// mknod for a fifo, char/block device (rdev as from `FileStatus.rdev` / `makeDevice`),
    /// socket (S_IFSOCK: an unbound socket inode) or empty regular file.
    /// Directories and symlinks have their own calls (EINVAL here).
    public static func makeNode(_ path: RawPath, kind: NodeKind, permissions: UInt32, rdev: UInt64) throws {
        switch kind {
        case .directory, .symlink:
            throw PosixError(errno: EINVAL, operation: "mknod", path: path)
        case .file, .fifo, .socket, .charDevice, .blockDevice:
            break
        }
        let device: dev_t = (kind == .charDevice || kind == .blockDevice) ? dev_t(rdev) : 0
        let mode = mode_t(kind.modeBits | (permissions & 0o7777))
        try withCPath(path, "mknod") { cPath in
            try check("mknod", path) { Glibc.mknod(cPath, mode, device) }
        }
    }

    /// lchown.
    public static func setOwner(_ path: RawPath, uid: UInt32, gid: UInt32) throws {
        try withCPath(path, "lchown") { cPath in
            try check("lchown", path) { Glibc.lchown(cPath, uid_t(uid), gid_t(gid)) }
        }
    }

    /// chmod without following a final symlink; a no-op for symlinks (Linux symlinks have no mode).
    /// Uses fchmodat(AT_SYMLINK_NOFOLLOW); if the C library reports that unsupported
    /// (no /proc), falls back to lstat + chmod.
    public static func setPermissions(_ path: RawPath, _ permissions: UInt32) throws {
        let mode = mode_t(permissions & 0o7777)
        let failure = try withCPath(path, "chmod") { cPath in
            attempt { Glibc.fchmodat(AT_FDCWD, cPath, mode, AT_SYMLINK_NOFOLLOW) }.errno
        }
        guard let code = failure else { return }
        guard code == EOPNOTSUPP || code == ENOTSUP else {
            throw PosixError(errno: code, operation: "chmod", path: path)
        }
        if try lstat(path).kind == .symlink { return }
        try withCPath(path, "chmod") { cPath in
            try check("chmod", path) { Glibc.chmod(cPath, mode) }
        }
    }

    /// utimensat(AT_FDCWD, path, [atime, mtime], AT_SYMLINK_NOFOLLOW). (ctime cannot be set.)
    public static func setTimes(_ path: RawPath, atime: Timespec, mtime: Timespec) throws {
        var times = (atime.cValue, mtime.cValue)
        try withCPath(path, "utimensat") { cPath in
            try withUnsafePointer(to: &times) { pair in
                try pair.withMemoryRebound(to: timespec.self, capacity: 2) { pointer in
                    try check("utimensat", path) { Glibc.utimensat(AT_FDCWD, cPath, pointer, AT_SYMLINK_NOFOLLOW) }
                }
            }
        }
    }

    /// unlink, or rmdir for a directory (which must be empty).
    public static func remove(_ path: RawPath) throws {
        let failure = try withCPath(path, "unlink") { cPath in
            attempt { Glibc.unlink(cPath) }.errno
        }
        guard let code = failure else { return }
        // Linux reports EISDIR for unlink on a directory; POSIX allows EPERM.
        if code == EISDIR || code == EPERM, let status = try? lstat(path), status.kind == .directory {
            try withCPath(path, "rmdir") { cPath in
                try check("rmdir", path) { Glibc.rmdir(cPath) }
            }
            return
        }
        throw PosixError(errno: code, operation: "unlink", path: path)
    }

    /// rename(2): atomically replaces `to` (a symlink at either path is renamed, not followed).
    public static func rename(_ from: RawPath, _ to: RawPath) throws {
        try withCPath(from, "rename") { cFrom in
            try withCPath(to, "rename") { cTo in
                try check("rename", from) { Glibc.rename(cFrom, cTo) }
            }
        }
    }

    /// Opens the directory (O_NOFOLLOW) and fsyncs it, making entry creation/renames durable.
    public static func fsyncDirectory(_ path: RawPath) throws {
        let fd = try withCPath(path, "open") { cPath in
            try check("open", path) { Glibc.open(cPath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        }
        defer { closeDescriptor(fd) }
        try check("fsync", path) { Glibc.fsync(fd) }
    }
}
