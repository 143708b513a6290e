/// Turns blob plaintext into an envelope and back.
///
/// Envelope plaintext = payload || 1 byte compression (0 = none, 1 = zstd frame). The flag is
/// last so a reader strips it without moving the payload.
/// Compression is skipped for incompressible data: the first 64 KiB are trial-compressed
/// and the chunk is stored raw unless that sample shrinks below 94 %.
public enum BlobCodec {
    static let sampleSize = 64 << 10

    public static func encode(_ plaintext: UnsafeRawBufferPointer, type: BlobType, id: BlobID,
                              compressor: ZstdCompressor, sealer: Sealer) throws -> [UInt8] {
        var payload: [UInt8]? = nil
        if plaintext.count >= 128 {
            let sampleLen = min(plaintext.count, sampleSize)
            let sample = compressor.compress(UnsafeRawBufferPointer(rebasing: plaintext[0..<sampleLen]))
            if sample.count * 100 < sampleLen * 94 {
                let full = sampleLen == plaintext.count ? sample : compressor.compress(plaintext)
                if full.count < plaintext.count {
                    var p = full
                    p.append(1)
                    payload = p
                }
            }
        }
        if payload == nil {
            var p = [UInt8]()
            p.reserveCapacity(plaintext.count + 1)
            p.append(contentsOf: plaintext)
            p.append(0)
            payload = p
        }
        return try sealer.seal(payload!, context: EnvelopeContext.blob(type, id))
    }

    public static func decode(_ envelope: UnsafeRawBufferPointer, type: BlobType, id: BlobID, rawLength: Int,
                              opener: Opener, decompressors: ObjectPool<ZstdDecompressor>, what: String) throws -> [UInt8] {
        var plain = try opener.open(envelope, context: EnvelopeContext.blob(type, id), what: what)
        guard let flag = plain.popLast() else { throw StoreError(.corrupt, "\(what): empty blob") }
        let out: [UInt8]
        switch flag {
        case 0: out = plain
        case 1:
            do {
                out = try plain.withUnsafeBytes { raw in
                    try decompressors.with { try $0.decompress(raw, expectedSize: rawLength) }
                }
            } catch {
                throw StoreError(.corrupt, "\(what): bad compressed data (\(error))")
            }
        default: throw StoreError(.corrupt, "\(what): unknown compression \(flag)")
        }
        guard out.count == rawLength else { throw StoreError(.corrupt, "\(what): length \(out.count), expected \(rawLength)") }
        try opener.checkBlobID(envelope, plaintext: out, id: id, what: what)
        return out
    }
}
