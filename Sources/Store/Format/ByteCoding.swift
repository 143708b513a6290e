/// Little helpers for the binary formats in docs/FORMAT.md: big-endian fixed
/// integers, LEB128 varints and length-prefixed byte strings.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 24)); bytes.append(UInt8(truncatingIfNeeded: v >> 16))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v))
    }
    public mutating func u64(_ v: UInt64) {
        u32(UInt32(truncatingIfNeeded: v >> 32)); u32(UInt32(truncatingIfNeeded: v))
    }
    /// The 32 bytes of a blob id.
    public mutating func blobID(_ id: BlobID) {
        let w = id.words
        u64(w.0); u64(w.1); u64(w.2); u64(w.3)
    }
    public mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    /// Zig-zag encoded signed varint.
    public mutating func svarint(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    public mutating func raw<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }
    public mutating func lengthPrefixed<C: Collection>(_ b: C) where C.Element == UInt8 {
        varint(UInt64(b.count)); bytes.append(contentsOf: b)
    }
    /// Empties the buffer, keeping its storage (for a scratch writer reused in a loop).
    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }
    /// How many bytes `varint(v)` writes.
    @inline(__always)
    public static func varintSize(_ v: UInt64) -> Int { v == 0 ? 1 : (64 - v.leadingZeroBitCount + 6) / 7 }
    /// How many bytes `svarint(v)` writes.
    @inline(__always)
    public static func svarintSize(_ v: Int64) -> Int { varintSize(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
}

/// Reads what ByteWriter wrote; every read is bounds-checked and throws
/// `StoreError(.corrupt)` rather than trapping on malformed input.
public struct ByteReader {
    private let bytes: [UInt8]
    public private(set) var offset: Int
    /// One past the last byte this reader may read (a sub-reader ends before its parent).
    private let end: Int
    private let what: String

    public init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.offset = 0
        self.end = bytes.count
        self.what = what
    }
    private init(_ bytes: [UInt8], offset: Int, end: Int, what: String) {
        self.bytes = bytes
        self.offset = offset
        self.end = end
        self.what = what
    }
    public var isAtEnd: Bool { offset >= end }
    public var remaining: Int { end - offset }

    private func fail(_ detail: String) -> StoreError {
        StoreError(.corrupt, "\(what): malformed (\(detail) at byte \(offset))")
    }
    public mutating func u8() throws -> UInt8 {
        guard offset < end else { throw fail("truncated") }
        defer { offset += 1 }
        return bytes[offset]
    }
    public mutating func u32() throws -> UInt32 {
        guard remaining >= 4 else { throw fail("truncated") }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }
    public mutating func u64() throws -> UInt64 {
        let hi = try u32(), lo = try u32()
        return UInt64(hi) << 32 | UInt64(lo)
    }
    /// 32 bytes as a blob id (no intermediate array).
    public mutating func blobID() throws -> BlobID {
        guard remaining >= 32 else { throw fail("truncated") }
        return BlobID(words: try u64(), try u64(), try u64(), try u64())
    }
    public mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8()
            if shift == 63 && b > 1 { throw fail("varint overflow") }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw fail("varint overflow") }
        }
    }
    public mutating func svarint() throws -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }
    public mutating func int(max: Int = Int(Int32.max)) throws -> Int {
        let v = try varint()
        guard v <= UInt64(max) else { throw fail("value \(v) out of range") }
        return Int(v)
    }
    public mutating func raw(_ count: Int) throws -> [UInt8] {
        guard count >= 0, remaining >= count else { throw fail("truncated") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
    public mutating func lengthPrefixed() throws -> [UInt8] {
        try raw(try int(max: remaining))
    }
    /// A reader over the next length-prefixed value, sharing this reader's storage (no copy);
    /// this reader moves past the value.
    public mutating func lengthPrefixedReader() throws -> ByteReader {
        let count = try int(max: remaining)
        defer { offset += count }
        return ByteReader(bytes, offset: offset, end: offset + count, what: what)
    }
    public mutating func skip(_ count: Int) throws {
        guard count >= 0, remaining >= count else { throw fail("truncated") }
        offset += count
    }
}
