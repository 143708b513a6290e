/// The 32-byte identifier of a blob: HMAC-SHA256 of its plaintext under the
/// repository's chunk-id key, so the store never reveals plain content hashes.
public struct BlobID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "BlobID must be 32 bytes")
        self.bytes = bytes
    }
    public init?(hex: String) {
        guard let b = Hex.decode(hex), b.count == 32 else { return nil }
        self.bytes = b
    }
    public var hex: String { Hex.encode(bytes) }

    /// The id is already a keyed MAC (uniformly distributed): hashing its first 8 bytes is enough
    /// and much cheaper than feeding all 32 bytes to the hasher one at a time.
    public func hash(into hasher: inout Hasher) {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[i]) }
        hasher.combine(v)
    }
    public static func == (a: BlobID, b: BlobID) -> Bool { a.bytes == b.bytes }
    public var shortHex: String { Hex.encode(bytes.prefix(4)) }
    public var description: String { hex }
    public static func < (a: BlobID, b: BlobID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// What a blob holds. Stored in pack headers and index files as one byte.
public enum BlobType: UInt8, Sendable {
    case data = 1   // a chunk of file content
    case tree = 2   // an encoded directory (Tree)
}
