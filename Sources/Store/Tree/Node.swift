/// One directory entry as stored in a tree blob. Names and link targets are raw bytes.
public struct Node: Sendable, Equatable {
    public enum Extent: Sendable, Equatable {
        case chunk(BlobID, length: Int64)   // file data stored as a data blob
        case hole(length: Int64)            // a sparse region (reads as zeros, restored as a hole)
        /// Bytes `offset..<offset+length` of a data blob shared with other small files (a bundle).
        case slice(BlobID, offset: Int64, length: Int64)

        public var length: Int64 {
            switch self { case .chunk(_, let l), .hole(let l), .slice(_, _, let l): return l }
        }

        /// The data blob holding this extent's bytes, and where in its plaintext they start;
        /// nil for a hole.
        public var data: (id: BlobID, offset: Int64)? {
            switch self {
            case .chunk(let id, _): return (id, 0)
            case .slice(let id, let offset, _): return (id, offset)
            case .hole: return nil
            }
        }
    }
    public struct Xattr: Sendable, Equatable {
        public var name: [UInt8]
        public var value: [UInt8]
        public init(name: [UInt8], value: [UInt8]) { self.name = name; self.value = value }
    }

    public var name: [UInt8]
    public var kind: NodeKind
    public var permissions: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var user: String?
    public var group: String?
    public var size: Int64 = 0
    public var mtime = Timespec(seconds: 0, nanoseconds: 0)
    public var atime = Timespec(seconds: 0, nanoseconds: 0)
    public var ctime = Timespec(seconds: 0, nanoseconds: 0)
    public var inode: UInt64 = 0
    public var device: UInt64 = 0
    public var nlink: UInt64 = 1
    public var rdev: UInt64 = 0
    public var linkTarget: [UInt8] = []
    public var xattrs: [Xattr] = []
    public var content: [Extent] = []
    public var subtree: BlobID?

    public init(name: [UInt8], kind: NodeKind) {
        self.name = name
        self.kind = kind
    }

    /// A node carrying the metadata of `status` (content and subtree left empty).
    public init(name: [UInt8], status st: FileStatus) {
        self.name = name
        kind = st.kind
        permissions = st.permissions
        uid = st.uid
        gid = st.gid
        user = Posix.userName(st.uid)
        group = Posix.groupName(st.gid)
        size = st.kind == .file || st.kind == .symlink ? st.size : 0
        mtime = st.mtime
        atime = st.atime
        ctime = st.ctime
        inode = st.inode
        device = st.device
        nlink = st.nlink
        rdev = st.kind == .charDevice || st.kind == .blockDevice ? st.rdev : 0
    }

    public var nameDescription: String { RawPath(bytes: name).description }
    /// True when this file shares its inode with other names (a hardlink set).
    public var isHardlinked: Bool { kind != .directory && nlink > 1 }
}
