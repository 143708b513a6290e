/// Turns blob plaintext into an envelope and back.
///
/// Envelope plaintext = payload || 1 byte compression (0 = none, 1 = zstd frame). The flag is
/// last so a reader strips it without moving the payload.
/// Compression is skipped for incompressible data: the first 64 KiB are compressed first and
/// the chunk is stored raw unless they shrink below 94 %; otherwise the frame goes on from
/// there (`ZstdCompressor.compressIfShrinking`), and is kept if the whole chunk shrank.
public enum BlobCodec {
    static let sampleSize = 64 << 10

    public static func encode(_ plaintext: UnsafeRawBufferPointer, type: BlobType, id: BlobID,
                              compressor: ZstdCompressor, sealer: Sealer) throws -> [UInt8] {
        let context = EnvelopeContext.blob(type, id)
        if plaintext.count >= 128 {
            // Frames are sealed where zstd wrote them, followed by the flag byte: no copies.
            let sealed: [UInt8]?? = try compressor.compressIfShrinking(plaintext, sampleSize: sampleSize, percent: 94) { frame in
                frame.count < plaintext.count ? try seal(frame, flag: 1, context, sealer) : nil
            }
            if let sealed = sealed ?? nil { return sealed }
        }
        return try seal(plaintext, flag: 0, context, sealer)
    }

    private static func seal(_ payload: UnsafeRawBufferPointer, flag: UInt8, _ context: [UInt8],
                             _ sealer: Sealer) throws -> [UInt8] {
        try withUnsafeBytes(of: flag) { try sealer.seal(parts: [payload, $0], context: context) }
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
