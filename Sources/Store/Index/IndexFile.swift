/// An index file: which blobs live in which packs, at which offsets.
///
///     "CFIX" | u8 version 1 | varint pack count |
///       per pack: 32-byte pack id | varint blob count |
///         per blob: u8 type | 32-byte id | varint offset | varint length | varint raw length
///
/// Stored encrypted (context "coffer:index") as `index/<sha256 of the ciphertext>`.
/// Written only after every pack it lists is durable; a snapshot is written only
/// after the index files covering its blobs.
public struct IndexFile: Sendable {
    public struct Pack: Sendable {
        public var id: String
        public var entries: [PackEntry]
        public init(id: String, entries: [PackEntry]) { self.id = id; self.entries = entries }
    }
    public var packs: [Pack]
    public init(packs: [Pack]) { self.packs = packs }

    static let magic: [UInt8] = Array("CFIX".utf8)

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + packs.reduce(0) { $0 + $1.entries.count * 45 })
        w.raw(IndexFile.magic)
        w.u8(1)
        w.varint(UInt64(packs.count))
        for p in packs {
            guard let id = Hex.decode(p.id), id.count == 32 else { preconditionFailure("pack id \(p.id) is not 32 hex bytes") }
            w.raw(id)
            w.varint(UInt64(p.entries.count))
            for e in p.entries {
                w.u8(e.type.rawValue)
                w.blobID(e.id)
                w.varint(UInt64(e.offset))
                w.varint(UInt64(e.length))
                w.varint(UInt64(e.rawLength))
            }
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], what: String) throws -> IndexFile {
        var r = ByteReader(bytes, what: what)
        guard try r.raw(4) == magic, try r.u8() == 1 else { throw StoreError(.corrupt, "\(what): bad index magic") }
        let n = try r.int(max: r.remaining / 33)
        var packs: [Pack] = []
        packs.reserveCapacity(n)
        for _ in 0..<n {
            let id = Hex.encode(try r.raw(32))
            let count = try r.int(max: r.remaining / 36)
            var entries: [PackEntry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                guard let t = BlobType(rawValue: try r.u8()) else { throw StoreError(.corrupt, "\(what): unknown blob type") }
                let bid = try r.blobID()
                entries.append(PackEntry(type: t, id: bid, offset: try r.int(), length: try r.int(), rawLength: try r.int()))
            }
            packs.append(Pack(id: id, entries: entries))
        }
        guard r.isAtEnd else { throw StoreError(.corrupt, "\(what): trailing bytes") }
        return IndexFile(packs: packs)
    }
}
