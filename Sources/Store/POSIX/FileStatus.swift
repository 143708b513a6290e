import Glibc

/// The result of lstat/fstat, with platform-independent field types.
public struct FileStatus: Sendable, Equatable {
    public var kind: NodeKind
    public var permissions: UInt32     // st_mode & 0o7777 (incl. setuid/setgid/sticky)
    public var uid: UInt32, gid: UInt32
    public var size: Int64
    public var atime: Timespec, mtime: Timespec, ctime: Timespec
    public var inode: UInt64, device: UInt64, nlink: UInt64, rdev: UInt64
    public var blocks: Int64           // 512-byte blocks allocated

    public init(kind: NodeKind, permissions: UInt32, uid: UInt32, gid: UInt32, size: Int64,
                atime: Timespec, mtime: Timespec, ctime: Timespec,
                inode: UInt64, device: UInt64, nlink: UInt64, rdev: UInt64, blocks: Int64) {
        self.kind = kind
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.size = size
        self.atime = atime
        self.mtime = mtime
        self.ctime = ctime
        self.inode = inode
        self.device = device
        self.nlink = nlink
        self.rdev = rdev
        self.blocks = blocks
    }

    /// nil if st_mode has a file type Linux does not define.
    init?(_ st: stat) {
        guard let kind = NodeKind(mode: UInt32(st.st_mode)) else { return nil }
        self.init(kind: kind,
                  permissions: UInt32(st.st_mode) & 0o7777,
                  uid: UInt32(st.st_uid), gid: UInt32(st.st_gid),
                  size: Int64(st.st_size),
                  atime: Timespec(st.st_atim), mtime: Timespec(st.st_mtim), ctime: Timespec(st.st_ctim),
                  inode: UInt64(st.st_ino), device: UInt64(st.st_dev),
                  nlink: UInt64(st.st_nlink), rdev: UInt64(st.st_rdev),
                  blocks: Int64(st.st_blocks))
    }

    /// Major/minor of `rdev` (meaningful for device nodes).
    public var rdevMajor: UInt32 { Posix.major(rdev) }
    public var rdevMinor: UInt32 { Posix.minor(rdev) }
}
