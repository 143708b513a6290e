import Crypto

/// What a pack's name is the SHA-256 of (docs/FORMAT.md §6); fixed by the repository's
/// format version (``RepositoryConfig/packNaming``).
public enum PackNaming: Sendable, Equatable {
    /// Version 1: the whole file.
    case wholeFile
    /// Version 2: the header envelope and the trailer, i.e. the last `header length + 8` bytes.
    /// The header lists every blob by its keyed id (the HMAC of its plaintext) and length, so
    /// the name commits to the contents without hashing every byte written (the blobs
    /// themselves are authenticated by AES-GCM and their ids).
    case header
}

/// One blob inside a pack, as listed by the pack header and by index files.
public struct PackEntry: Sendable, Equatable {
    public var type: BlobType
    public var id: BlobID
    public var offset: Int        // of the blob's envelope within the pack
    public var length: Int        // envelope length (ciphertext + overhead)
    public var rawLength: Int     // plaintext length before compression

    public init(type: BlobType, id: BlobID, offset: Int, length: Int, rawLength: Int) {
        self.type = type; self.id = id; self.offset = offset; self.length = length; self.rawLength = rawLength
    }
}

/// Pack file layout (see docs/FORMAT.md):
///
///     blob envelope 0 | blob envelope 1 | … | header envelope | u32 BE header length | "CFP1"
///
/// The header envelope (context "coffer:pack-header") lists every blob, so a pack is
/// self-describing: the index can be rebuilt from packs alone (disaster recovery).
/// The pack's name is the SHA-256 of its header envelope and trailer (``PackNaming/header``,
/// format version 2) or of the whole file (``PackNaming/wholeFile``, version 1).
public enum PackFormat {
    public static let trailerMagic: [UInt8] = Array("CFP1".utf8)
    public static let trailerLength = 8
    static let headerMagic: [UInt8] = Array("CFPH".utf8)

    static func encodeHeader(_ entries: [PackEntry]) -> [UInt8] {
        var w = ByteWriter(capacity: 16 + entries.count * 40)
        w.raw(headerMagic)
        w.u8(1)
        w.varint(UInt64(entries.count))
        for e in entries {
            w.u8(e.type.rawValue)
            w.blobID(e.id)
            w.varint(UInt64(e.length))
            w.varint(UInt64(e.rawLength))
        }
        return w.bytes
    }

    /// Decodes a header; offsets are implied by the blob order.
    static func decodeHeader(_ bytes: [UInt8], what: String) throws -> [PackEntry] {
        var r = ByteReader(bytes, what: what)
        guard try r.raw(4) == headerMagic, try r.u8() == 1 else {
            throw StoreError(.corrupt, "\(what): bad pack header magic")
        }
        let count = try r.int(max: r.remaining / 35)
        var out: [PackEntry] = []
        out.reserveCapacity(count)
        var offset = 0
        for _ in 0..<count {
            guard let t = BlobType(rawValue: try r.u8()) else { throw StoreError(.corrupt, "\(what): unknown blob type") }
            let id = try r.blobID()
            let len = try r.int()
            let raw = try r.int()
            out.append(PackEntry(type: t, id: id, offset: offset, length: len, rawLength: raw))
            offset += len
        }
        return out
    }

    /// The name a complete pack held in memory must have under `naming` (lower-case hex);
    /// nil when the header rule applies and the pack has no valid trailer. Needs no key.
    public static func name(of pack: [UInt8], naming: PackNaming) -> String? {
        switch naming {
        case .wholeFile:
            return Hex.encode(SHA256.hash(pack))
        case .header:
            guard let hlen = headerLength(pack), hlen <= pack.count - trailerLength else { return nil }
            return pack[(pack.count - trailerLength - hlen)...].withUnsafeBytes { Hex.encode(SHA256.hash($0)) }
        }
    }

    /// The header envelope length the trailer of a complete pack states; nil without a trailer.
    static func headerLength(_ pack: [UInt8]) -> Int? {
        guard pack.count >= trailerLength, Array(pack[(pack.count - 4)...]) == trailerMagic else { return nil }
        let p = pack.count - trailerLength
        return Int(UInt32(pack[p]) << 24 | UInt32(pack[p + 1]) << 16 | UInt32(pack[p + 2]) << 8 | UInt32(pack[p + 3]))
    }

    /// Reads and decrypts the header of a complete pack held in memory.
    public static func readHeader(_ pack: [UInt8], opener: Opener, what: String) throws -> [PackEntry] {
        guard let hlen = headerLength(pack) else {
            throw StoreError(.corrupt, "\(what): not a pack (missing trailer)")
        }
        let p = pack.count - trailerLength
        guard hlen >= Envelope.overhead, hlen <= p else { throw StoreError(.corrupt, "\(what): bad header length") }
        let plain = try pack[(p - hlen)..<p].withUnsafeBytes {
            try opener.open($0, context: EnvelopeContext.packHeader, what: "\(what) header")
        }
        let entries = try decodeHeader(plain, what: what)
        guard (entries.last.map { $0.offset + $0.length } ?? 0) == p - hlen else {
            throw StoreError(.corrupt, "\(what): header does not match pack size")
        }
        return entries
    }
}
