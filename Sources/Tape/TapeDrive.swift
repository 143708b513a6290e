import Crypto

/// The contract for a sequential tape drive, as the Linux st driver presents one.
/// The virtual (file-backed) drive and the real `/dev/nst*` driver implement it;
/// the Store's tape backend spills packs through it.
///
/// Semantics follow st(4): variable-length records; `writeFilemarks` terminates a file;
/// reading at a filemark returns an empty record once and moves past it; reading at
/// end-of-data throws `.endOfData`; writing past the early-warning point succeeds but
/// reports `.earlyWarning` so the caller can close the volume cleanly.
public protocol TapeDrive: AnyObject {
    func write(record: [UInt8]) throws -> TapeWriteStatus
    func read(maxLength: Int) throws -> [UInt8]
    func writeFilemarks(_ count: Int) throws
    /// Spaces over `count` filemarks (negative: backwards).
    func spaceFilemarks(_ count: Int) throws
    func rewind() throws
    /// Logical block position (MTIOCPOS / READ POSITION).
    func position() throws -> UInt64
    func seek(to block: UInt64) throws
}

public enum TapeWriteStatus: Sendable, Equatable {
    case ok
    case earlyWarning      // near end of medium: finish the current file and change volumes
}

public struct TapeError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable { case endOfData, endOfMedium, io, notReady, writeProtected }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }
}
