import Store

/// Attributes of one entry as the kernel sees them (mapped to `struct stat` by the bridge).
public struct FSAttr: Sendable, Equatable {
    public var ino: UInt64
    public var mode: UInt32          // file type bits | permission bits
    public var nlink: UInt64
    public var uid: UInt32
    public var gid: UInt32
    public var rdev: UInt64
    public var size: Int64
    public var blocks: Int64         // 512-byte units of data (holes not counted)
    public var atime: Timespec
    public var mtime: Timespec
    public var ctime: Timespec
}

/// A filesystem error carried as an errno value; anything unexpected becomes EIO.
public struct FSError: Error, Equatable {
    public let errno: Int32
    public init(_ errno: Int32) { self.errno = errno }
}

/// The bytes of one read reply as consecutive pieces: slices of cached chunks and of a shared
/// zero buffer (holes). The bridge hands them to the kernel as one iovec list, so a read that
/// spans chunks is never copied into a joined buffer.
public struct FSReadData: Sendable {
    public private(set) var segments: [ArraySlice<UInt8>] = []
    public private(set) var count = 0

    public init() {}

    public init(_ slice: ArraySlice<UInt8>) {
        append(slice)
    }

    mutating func append(_ slice: ArraySlice<UInt8>) {
        guard !slice.isEmpty else { return }
        segments.append(slice)
        count += slice.count
    }

    /// `n` zero bytes (a hole), as slices of one shared buffer.
    mutating func appendZeros(_ n: Int) {
        var left = n
        while left > 0 {
            let k = min(left, FSReadData.zeros.count)
            append(FSReadData.zeros[0..<k])
            left -= k
        }
    }

    private static let zeros = [UInt8](repeating: 0, count: 1 << 20)

    public var isEmpty: Bool { count == 0 }

    /// The pieces joined (tests and callers that want one buffer).
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        for s in segments { out += s }
        return out
    }
}

/// One directory entry for readdir.
public struct FSDirEntry: Sendable {
    public let name: [UInt8]
    public let ino: UInt64
    public let mode: UInt32
}

public struct FSStatfs: Sendable {
    public var blockSize: UInt64
    public var blocks: UInt64
    public var files: UInt64
    public var nameMax: UInt64
}

enum StatMode {
    static let fifo: UInt32 = 0o010000, char: UInt32 = 0o020000, dir: UInt32 = 0o040000
    static let block: UInt32 = 0o060000, file: UInt32 = 0o100000, link: UInt32 = 0o120000, socket: UInt32 = 0o140000

    static func typeBits(_ k: NodeKind) -> UInt32 {
        switch k {
        case .file: return file
        case .directory: return dir
        case .symlink: return link
        case .charDevice: return char
        case .blockDevice: return block
        case .fifo: return fifo
        case .socket: return socket
        }
    }
}

/// FNV-1a, 64 bit: deterministic inode numbers (the same across mounts).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf29ce484222325
    mutating func add<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100000001b3 }
    }
    mutating func add(_ v: UInt64) {
        for i in 0..<8 { add(CollectionOfOne(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))))) }
    }
    /// Never 0 or 1 (1 is the root).
    var inode: UInt64 { value < 2 ? value + 2 : value }
}
