import Crypto
@testable import Store
import XCTest

/// Version 2 (index key) and version 3 (sealed by a write-only key) envelopes, docs/FORMAT.md §4,
/// checked against the primitives directly.
final class WriteOnlyEnvelopeTests: XCTestCase {
    let writerID: [UInt8] = (0..<16).map { UInt8(0x50 + $0) }

    func hkdf(_ ikm: [UInt8], salt: [UInt8], _ info: [UInt8], _ n: Int = 32) throws -> [UInt8] {
        try HKDF.sha256(inputKey: ikm, salt: salt, info: info, outputLength: n)
    }
    func derived(_ info: String) throws -> [UInt8] {
        try hkdf(StoreTestKeys.masterBytes, salt: StoreTestKeys.repositoryID, Array(info.utf8))
    }

    func testIndexFilesAndLocksUseTheIndexKeyAsVersion2() throws {
        let keys = try StoreTestKeys.make()
        let sealer = try Sealer(keys: keys)
        for context in [EnvelopeContext.index, EnvelopeContext.lock] {
            let env = try sealer.seal([9, 8, 7], context: context)
            XCTAssertEqual(env.count, 33 + 3 + 16)
            XCTAssertEqual(env[0], 2)
            let key = try hkdf(try derived("coffer/v1/index"), salt: Array(env[5..<21]), Array("coffer/v1/session".utf8))
            XCTAssertEqual(try AESGCM.open(key: key, nonce: Array(env[21..<33]), sealed: Array(env[33...]),
                                           aad: Array(env[0..<33]) + context), [9, 8, 7])
        }
        // Snapshots, blobs and pack headers stay version 1 (data key).
        XCTAssertEqual(try sealer.seal([1], context: EnvelopeContext.snapshot)[0], 1)
        XCTAssertEqual(try sealer.seal([1], context: EnvelopeContext.packHeader)[0], 1)
    }

    func testSealedEnvelopeLayoutAndKeyDerivation() throws {
        let keys = try StoreTestKeys.make()
        let writer = try keys.writeOnlyKeys(writerID: writerID)
        XCTAssertTrue(writer.isWriteOnly)
        let sealer = try Sealer(writer: writer)
        let plain = Array("a snapshot".utf8)
        var ephemeral: [UInt8]?
        for n in UInt8(1)...3 {
            let env = try sealer.seal(plain, context: EnvelopeContext.snapshot)
            XCTAssertEqual(env.count, 65 + plain.count + 16)
            XCTAssertEqual(env[0], 3)
            XCTAssertEqual(Array(env[1..<5]), [0, 0, 0, 0])
            XCTAssertEqual(Array(env[5..<21]), writerID)
            let e = Array(env[21..<53])
            if let ephemeral { XCTAssertEqual(e, ephemeral, "one ephemeral key per session") } else { ephemeral = e }
            XCTAssertEqual(Array(env[53..<65]), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n])

            // Reader side from the spec: X25519(HKDF(master, "coffer/v1/x25519"), e), writer key
            // HKDF(master, "coffer/v1/writer" ‖ id), session key HKDF(shared ‖ writer key, e ‖ R, info ‖ id).
            let priv = try derived("coffer/v1/x25519")
            let recipient = try X25519.publicKey(privateKey: priv)
            XCTAssertEqual(recipient, keys.sealingPublicKey)
            let shared = try X25519.sharedSecret(privateKey: priv, publicKey: e)
            let writerKey = try hkdf(StoreTestKeys.masterBytes, salt: StoreTestKeys.repositoryID,
                                     Array("coffer/v1/writer".utf8) + writerID)
            let key = try hkdf(shared + writerKey, salt: e + recipient, Array("coffer/v1/sealed-session".utf8) + writerID)
            XCTAssertEqual(try AESGCM.open(key: key, nonce: Array(env[53..<65]), sealed: Array(env[65...]),
                                           aad: Array(env[0..<65]) + EnvelopeContext.snapshot), plain)
            XCTAssertEqual(try Opener(keys: keys).open(env, context: EnvelopeContext.snapshot, what: "s"), plain)
        }
        let other = try Sealer(writer: writer).seal(plain, context: EnvelopeContext.snapshot)
        XCTAssertNotEqual(Array(other[21..<53]), ephemeral, "a new session has a new ephemeral key")
    }

    func testWriteOnlyOpenerReadsIndexFilesOnly() throws {
        let keys = try StoreTestKeys.make()
        let writer = try keys.writeOnlyKeys(writerID: writerID)
        let own = try Sealer(writer: writer)
        let reader = try Sealer(keys: keys)
        let opener = Opener(writeOnly: writer)
        XCTAssertFalse(opener.canReadData)
        // Index files of both kinds of writer: readable (deduplication needs them).
        XCTAssertEqual(try opener.open(try own.seal([1], context: EnvelopeContext.index), context: EnvelopeContext.index, what: "i"), [1])
        XCTAssertEqual(try opener.open(try reader.seal([2], context: EnvelopeContext.index), context: EnvelopeContext.index, what: "i"), [2])
        // Everything else, its own or not: refused.
        for sealer in [own, reader] {
            for context in [EnvelopeContext.snapshot, EnvelopeContext.packHeader, EnvelopeContext.blob(.tree, BlobID(bytes: [UInt8](repeating: 1, count: 32)))] {
                let env = try sealer.seal([3], context: context)
                assertStoreError(.writeOnly) { _ = try opener.open(env, context: context, what: "x") }
            }
        }
        // A tampered sealed envelope fails authentication for the reader.
        var env = try own.seal([4, 5], context: EnvelopeContext.snapshot)
        env[env.count - 1] ^= 1
        assertStoreError(.corrupt) { _ = try Opener(keys: keys).open(env, context: EnvelopeContext.snapshot, what: "x") }
    }

    func testIndexKeyCannotForgeOtherObjects() throws {
        // Every write-only key holds the index key: a version 2 envelope is accepted only for
        // index files and locks, and a version 3 one never for them.
        let keys = try StoreTestKeys.make()
        let sealer = try Sealer(keys: keys)
        let opener = Opener(keys: keys)
        let index = try sealer.seal([1], context: EnvelopeContext.index)
        // Re-encrypt the same kind of envelope for a snapshot context with the index key.
        let key = try hkdf(try derived("coffer/v1/index"), salt: Array(index[5..<21]), Array("coffer/v1/session".utf8))
        var forged = Array(index[0..<33])
        let aad = forged + EnvelopeContext.snapshot
        try [UInt8]([7]).withUnsafeBytes { p in
            try aad.withUnsafeBytes { a in
                try AESGCM.seal(key: key, nonce: Array(index[21..<33]), plaintext: p, aad: a, into: &forged)
            }
        }
        let e = assertStoreError(.corrupt) { _ = try opener.open(forged, context: EnvelopeContext.snapshot, what: "snapshot x") }
        XCTAssertTrue(e?.message.contains("not allowed") ?? false, e?.message ?? "")
        let sealed = try Sealer(writer: try keys.writeOnlyKeys(writerID: writerID)).seal([1], context: EnvelopeContext.snapshot)
        assertStoreError(.corrupt) { _ = try opener.open(sealed, context: EnvelopeContext.index, what: "index x") }
    }

    func testReadersRecomputeTheIdOfSealedBlobs() throws {
        // A write-only key knows the chunk-id key and can seal any content under any id; the reader
        // must notice, where a symmetric (read-capable) writer's blobs are trusted by their AEAD.
        let keys = try StoreTestKeys.make()
        let writer = try keys.writeOnlyKeys(writerID: writerID)
        let sealer = try Sealer(writer: writer)
        let opener = Opener(keys: keys)
        let pool = ObjectPool { ZstdDecompressor() }
        let compressor = ZstdCompressor(level: 1)
        let good = Array("the real content".utf8), evil = Array("other content!!!".utf8)
        let goodID = keys.blobID(good)
        let honest = try good.withUnsafeBytes { try BlobCodec.encode($0, type: .data, id: goodID, compressor: compressor, sealer: sealer) }
        let decoded = try honest.withUnsafeBytes {
            try BlobCodec.decode($0, type: .data, id: goodID, rawLength: good.count, opener: opener, decompressors: pool, what: "b")
        }
        XCTAssertEqual(decoded, good)
        let forged = try evil.withUnsafeBytes { try BlobCodec.encode($0, type: .data, id: goodID, compressor: compressor, sealer: sealer) }
        let e = assertStoreError(.corrupt) {
            _ = try forged.withUnsafeBytes {
                try BlobCodec.decode($0, type: .data, id: goodID, rawLength: evil.count, opener: opener, decompressors: pool, what: "blob x")
            }
        }
        XCTAssertTrue(e?.message.contains("does not match its id") ?? false, e?.message ?? "")
    }

    func testKeyFileRoundTripAndCheckValue() throws {
        let keys = try StoreTestKeys.make()
        let key = try WriteOnlyKey.issue(keys: keys, label: "web1")
        let w = try key.writerKeys(what: "k")
        XCTAssertEqual(w.blobID([1, 2, 3]), keys.blobID([1, 2, 3]), "same chunk ids: deduplication works")
        XCTAssertEqual(w.gear.values, keys.gear.values, "same chunk boundaries")
        let text = String(decoding: try key.encoded(), as: UTF8.self)
        for secret in ["master", "x25519"] { XCTAssertFalse(text.contains(secret)) }
        // The sealing private key is nowhere in the file.
        let priv = Data(try derived("coffer/v1/x25519")).base64EncodedString()
        XCTAssertFalse(text.contains(priv))
        var damaged = key
        damaged.label = "web2"
        assertStoreError(.corrupt) { _ = try damaged.writerKeys(what: "k") }
    }
}
