import Glibc

/// The type of a filesystem node (the S_IFMT part of st_mode).
public enum NodeKind: UInt8, Sendable {
    case file = 1, directory = 2, symlink = 3, charDevice = 4, blockDevice = 5, fifo = 6, socket = 7

    /// Maps st_mode's S_IFMT bits; nil for a type Linux does not produce.
    public init?(mode: UInt32) {
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFREG): self = .file
        case UInt32(S_IFDIR): self = .directory
        case UInt32(S_IFLNK): self = .symlink
        case UInt32(S_IFCHR): self = .charDevice
        case UInt32(S_IFBLK): self = .blockDevice
        case UInt32(S_IFIFO): self = .fifo
        case UInt32(S_IFSOCK): self = .socket
        default: return nil
        }
    }

    /// The S_IFMT bits for this kind (as used by mknod).
    public var modeBits: UInt32 {
        switch self {
        case .file: return UInt32(S_IFREG)
        case .directory: return UInt32(S_IFDIR)
        case .symlink: return UInt32(S_IFLNK)
        case .charDevice: return UInt32(S_IFCHR)
        case .blockDevice: return UInt32(S_IFBLK)
        case .fifo: return UInt32(S_IFIFO)
        case .socket: return UInt32(S_IFSOCK)
        }
    }
}
