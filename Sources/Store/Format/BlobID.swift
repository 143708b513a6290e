/// The 32-byte identifier of a blob: HMAC-SHA256 of its plaintext under the
/// repository's chunk-id key, so the store never reveals plain content hashes.
public struct BlobID: Hashable, Sendable, Comparable, CustomStringConvertible {
    // The 32 bytes as four big-endian words: a BlobID is a plain value (no heap buffer to
    // allocate, retain and release; trees hold one per chunk of every file), and comparing
    // words in order compares the bytes lexicographically.
    private let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 32, "BlobID must be 32 bytes")
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (i, b) in bytes.enumerated() {
            switch i >> 3 {
            case 0: w.0 = w.0 << 8 | UInt64(b)
            case 1: w.1 = w.1 << 8 | UInt64(b)
            case 2: w.2 = w.2 << 8 | UInt64(b)
            default: w.3 = w.3 << 8 | UInt64(b)
            }
        }
        (w0, w1, w2, w3) = w
    }
    init(words w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }
    public init?(hex: String) {
        guard let b = Hex.decode(hex), b.count == 32 else { return nil }
        self.init(bytes: b)
    }

    /// The 32 bytes (a new array).
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        for w in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: w >> UInt64(shift))) }
        }
        return out
    }
    var words: (UInt64, UInt64, UInt64, UInt64) { (w0, w1, w2, w3) }
    public var hex: String { Hex.encode(bytes) }

    /// The id is already a keyed MAC (uniformly distributed): its first 8 bytes are hash enough.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0)
    }
    public var shortHex: String { Hex.encode(bytes.prefix(4)) }
    public var description: String { hex }
    public static func < (a: BlobID, b: BlobID) -> Bool {
        if a.w0 != b.w0 { return a.w0 < b.w0 }
        if a.w1 != b.w1 { return a.w1 < b.w1 }
        if a.w2 != b.w2 { return a.w2 < b.w2 }
        return a.w3 < b.w3
    }
}

/// What a blob holds. Stored in pack headers and index files as one byte.
public enum BlobType: UInt8, Sendable {
    case data = 1   // a chunk of file content
    case tree = 2   // an encoded directory (Tree)
}
