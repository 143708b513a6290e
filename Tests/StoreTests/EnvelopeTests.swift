import Crypto
import Dispatch
@testable import Store
import XCTest

/// Envelopes (docs/FORMAT.md §4), key derivation (§3) and blob encoding (§5).
final class EnvelopeTests: XCTestCase {
    private let context = Array("coffer:snapshot".utf8)

    private func counter(_ envelope: [UInt8]) -> UInt64 {
        envelope[25..<33].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The session key computed straight from §3/§4 with the Crypto primitives, not through Store.
    private func specSessionKey(master: [UInt8], repositoryID: [UInt8], session: [UInt8]) throws -> [UInt8] {
        let data = try HKDF.sha256(inputKey: master, salt: repositoryID, info: Array("coffer/v1/data".utf8), outputLength: 32)
        return try HKDF.sha256(inputKey: data, salt: session, info: Array("coffer/v1/session".utf8), outputLength: 32)
    }

    // MARK: - Layout

    func testHeaderLayoutMatchesTheFormat() throws {
        let keys = try StoreTestKeys.make()
        let sealer = try Sealer(keys: keys)
        let plain = Array("hello, envelope".utf8)
        var session: [UInt8]?
        for expected in UInt64(1)...5 {
            let env = try sealer.seal(plain, context: context)
            XCTAssertEqual(env.count, 33 + plain.count + 16)
            XCTAssertEqual(env.count, Envelope.overhead + plain.count)
            XCTAssertEqual(env[0], 1, "version byte")
            XCTAssertEqual(Array(env[1..<5]), [0, 0, 0, 0], "key generation 0")
            let s = Array(env[5..<21])
            if let session { XCTAssertEqual(s, session, "one session id per Sealer") } else { session = s }
            XCTAssertEqual(Array(env[21..<25]), [0, 0, 0, 0], "nonce starts with 4 zero bytes")
            XCTAssertEqual(counter(env), expected, "counter starts at 1 and grows by 1")
            XCTAssertEqual(Array(env[21..<33]), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(expected)])
            // Decrypt with the primitives: key = HKDF(HKDF(master, id, data), session, session), AAD = header || context.
            let key = try specSessionKey(master: StoreTestKeys.masterBytes, repositoryID: StoreTestKeys.repositoryID, session: s)
            let opened = try AESGCM.open(key: key, nonce: Array(env[21..<33]), sealed: Array(env[33...]),
                                         aad: Array(env[0..<33]) + context)
            XCTAssertEqual(opened, plain)
        }
        XCTAssertNotEqual(session, [UInt8](repeating: 0, count: 16))
    }

    func testTwoSealersHaveDifferentSessionIDsAndOwnCounters() throws {
        let keys = try StoreTestKeys.make()
        let a = try Sealer(keys: keys), b = try Sealer(keys: keys)
        let ea = try a.seal([1, 2, 3], context: context)
        let eb = try b.seal([1, 2, 3], context: context)
        XCTAssertNotEqual(Array(ea[5..<21]), Array(eb[5..<21]))
        XCTAssertEqual(counter(ea), 1)
        XCTAssertEqual(counter(eb), 1)
        XCTAssertNotEqual(Array(ea[33...]), Array(eb[33...]), "distinct session keys give distinct ciphertexts")
        let opener = Opener(keys: keys)
        XCTAssertEqual(try opener.open(ea, context: context, what: "a"), [1, 2, 3])
        XCTAssertEqual(try opener.open(eb, context: context, what: "b"), [1, 2, 3])
    }

    func testCountersAreUniqueUnderConcurrentSealing() throws {
        let keys = try StoreTestKeys.make()
        let sealer = try Sealer(keys: keys)
        let n = 400
        let lock = Mutex()
        var counters: [UInt64] = []
        var failures = 0
        DispatchQueue.concurrentPerform(iterations: n) { i in
            do {
                let env = try sealer.seal([UInt8(truncatingIfNeeded: i)], context: context)
                let c = counter(env)
                lock.withLock { counters.append(c) }
            } catch {
                lock.withLock { failures += 1 }
            }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertEqual(counters.sorted(), Array(1...UInt64(n)))
    }

    /// Frozen sample (like kopia's TestCiphertextSamples): an envelope produced once by an independent
    /// implementation of §3/§4 (Python `cryptography`: HKDF-SHA256 + AES-256-GCM) with master 00..3f,
    /// repository id a0..bf, session id 01..10, counter 7, context "coffer:index". (Index files are
    /// version 2 since write-only keys; readers still open version 1 index files of older repositories.)
    func testFrozenEnvelopeOpens() throws {
        let context = EnvelopeContext.index
        let golden = "01" + "00000000" + "0102030405060708090a0b0c0d0e0f10" + "00000000" + "0000000000000007"
            + "470fee04bd67ff433f63096413d8c3b9" + "f6cf8fc576525c68541dca8c4df8e3f7"
        let opener = Opener(keys: try StoreTestKeys.make())
        XCTAssertEqual(try opener.open(storeTestHex(golden), context: context, what: "golden"), Array("golden plaintext".utf8))
        assertStoreError(.corrupt) { try opener.open(storeTestHex(golden), context: EnvelopeContext.lock, what: "golden") }
    }

    // MARK: - Failures

    func testOpeningWithADifferentContextFails() throws {
        let keys = try StoreTestKeys.make()
        let sealer = try Sealer(keys: keys), opener = Opener(keys: keys)
        let env = try sealer.seal(Array("{}".utf8), context: EnvelopeContext.snapshot)
        XCTAssertEqual(try opener.open(env, context: EnvelopeContext.snapshot, what: "s"), Array("{}".utf8))
        let e = assertStoreError(.corrupt) { try opener.open(env, context: EnvelopeContext.index, what: "snapshots/abcd") }
        XCTAssertTrue(e?.message.contains("snapshots/abcd") ?? false, e?.message ?? "")
        assertStoreError(.corrupt) { try opener.open(env, context: EnvelopeContext.packHeader, what: "s") }
        assertStoreError(.corrupt) { try opener.open(env, context: [], what: "s") }
        assertStoreError(.corrupt) { try opener.open(env, context: EnvelopeContext.snapshot + [0], what: "s") }

        let id1 = storeTestBlobID(1), id2 = storeTestBlobID(2)
        let blob = try sealer.seal([9, 9, 9], context: EnvelopeContext.blob(.data, id1))
        XCTAssertEqual(try opener.open(blob, context: EnvelopeContext.blob(.data, id1), what: "b"), [9, 9, 9])
        assertStoreError(.corrupt) { try opener.open(blob, context: EnvelopeContext.blob(.data, id2), what: "b") }
        assertStoreError(.corrupt) { try opener.open(blob, context: EnvelopeContext.blob(.tree, id1), what: "b") }
    }

    func testFlippingAnySingleByteFails() throws {
        let keys = try StoreTestKeys.make()
        let sealer = try Sealer(keys: keys), opener = Opener(keys: keys)
        let env = try sealer.seal([0x61, 0x62, 0x63], context: context)
        XCTAssertEqual(env.count, 52)
        XCTAssertEqual(try opener.open(env, context: context, what: "e"), [0x61, 0x62, 0x63])
        for i in 0..<env.count {
            for mask: UInt8 in [0x01, 0x80, 0xff] {
                var bad = env
                bad[i] ^= mask
                assertStoreError(.corrupt, "byte \(i) ^ \(mask)") { try opener.open(bad, context: context, what: "e") }
            }
        }
    }

    func testTruncatedOrExtendedEnvelopeFails() throws {
        let keys = try StoreTestKeys.make()
        let sealer = try Sealer(keys: keys), opener = Opener(keys: keys)
        let env = try sealer.seal(storeTestBytes(count: 40, seed: 1), context: context)
        for n in 0..<env.count {
            assertStoreError(.corrupt, "\(n) bytes") { try opener.open(Array(env.prefix(n)), context: context, what: "e") }
        }
        assertStoreError(.corrupt) { try opener.open(env + [0], context: context, what: "e") }
        assertStoreError(.corrupt) { try opener.open(Array(env.dropFirst()), context: context, what: "e") }
    }

    func testEmptyAndLargePlaintexts() throws {
        let keys = try StoreTestKeys.make()
        let sealer = try Sealer(keys: keys), opener = Opener(keys: keys)
        let empty = try sealer.seal([], context: context)
        XCTAssertEqual(empty.count, Envelope.overhead)
        XCTAssertEqual(try opener.open(empty, context: context, what: "e"), [])
        let large = storeTestBytes(count: 3 << 20, seed: 7)
        XCTAssertEqual(try opener.open(try sealer.seal(large, context: context), context: context, what: "e"), large)
    }

    func testOtherKeysCannotOpen() throws {
        let sealer = try Sealer(keys: try StoreTestKeys.make())
        let env = try sealer.seal([1], context: context)
        let otherID = Opener(keys: try StoreTestKeys.make(repositoryID: [UInt8](repeating: 0xa0, count: 32)))
        assertStoreError(.corrupt) { try otherID.open(env, context: context, what: "e") }
        var m = StoreTestKeys.masterBytes; m[63] ^= 1
        let otherMaster = Opener(keys: try RepositoryKeys(master: SecretBytes(m), repositoryID: StoreTestKeys.repositoryID))
        assertStoreError(.corrupt) { try otherMaster.open(env, context: context, what: "e") }
    }

    // MARK: - Key derivation

    func testKeyDerivationIsDeterministic() throws {
        let a = try StoreTestKeys.make(), b = try StoreTestKeys.make()
        let text = Array("coffer".utf8)
        XCTAssertEqual(a.blobID(text), b.blobID(text))
        XCTAssertEqual(a.gear.values, b.gear.values)
        XCTAssertEqual(a.gear.values.count, 256)
        XCTAssertEqual(try a.sessionKey(Array(repeating: 5, count: 16), generation: 0, what: "a"), try b.sessionKey(Array(repeating: 5, count: 16), generation: 0, what: "b"))
        // Frozen values, computed independently (Python: HKDF-SHA256, HMAC-SHA256, little-endian u64s).
        XCTAssertEqual(a.blobID(text).hex, "74e40ce16577e5696d205f355cb165988e71aded2ab30785bb610b4890b761a5")
        XCTAssertEqual(a.gear.values[0], 0xa9bf_dd78_450f_23ca)
        XCTAssertEqual(a.gear.values[255], 0x3ba5_8a1b_f2f7_6de3)
        // The blob id is HMAC-SHA256 under HKDF(master, id, "coffer/v1/chunk-id").
        let chunkKey = try HKDF.sha256(inputKey: StoreTestKeys.masterBytes, salt: StoreTestKeys.repositoryID,
                                       info: Array("coffer/v1/chunk-id".utf8), outputLength: 32)
        let data = storeTestBytes(count: 1000, seed: 11)
        XCTAssertEqual(a.blobID(data).bytes, HMACSHA256.authenticationCode(key: chunkKey, data: data))
        XCTAssertEqual(data.withUnsafeBytes { a.blobID($0) }, a.blobID(data))
        XCTAssertNotEqual(a.blobID(data).bytes, SHA256.hash(data), "not a plain content hash")
    }

    func testDifferentRepositoryIDOrMasterGivesDifferentKeys() throws {
        let a = try StoreTestKeys.make()
        var otherID = StoreTestKeys.repositoryID; otherID[0] ^= 1
        let b = try StoreTestKeys.make(repositoryID: otherID)
        let text = Array("coffer".utf8)
        XCTAssertNotEqual(a.blobID(text), b.blobID(text))
        XCTAssertNotEqual(a.gear.values, b.gear.values)
        XCTAssertNotEqual(try a.sessionKey(Array(repeating: 5, count: 16), generation: 0, what: "k"), try b.sessionKey(Array(repeating: 5, count: 16), generation: 0, what: "k"))
        var m = StoreTestKeys.masterBytes; m[0] ^= 1
        let c = try RepositoryKeys(master: SecretBytes(m), repositoryID: StoreTestKeys.repositoryID)
        XCTAssertNotEqual(a.blobID(text), c.blobID(text))
        XCTAssertNotEqual(a.gear.values, c.gear.values)
        XCTAssertEqual(a.generation, 0)
    }

    // MARK: - BlobCodec

    private struct Codec {
        let keys: RepositoryKeys
        let sealer: Sealer
        let opener: Opener
        let compressor = ZstdCompressor()
        let pool = ObjectPool { ZstdDecompressor() }

        init() throws {
            keys = try StoreTestKeys.make()
            sealer = try Sealer(keys: keys)
            opener = Opener(keys: keys)
        }
        func encode(_ plain: [UInt8], type: BlobType = .data, id: BlobID? = nil) throws -> [UInt8] {
            try plain.withUnsafeBytes {
                try BlobCodec.encode($0, type: type, id: id ?? keys.blobID(plain), compressor: compressor, sealer: sealer)
            }
        }
        func decode(_ env: [UInt8], type: BlobType = .data, id: BlobID, rawLength: Int) throws -> [UInt8] {
            try env.withUnsafeBytes {
                try BlobCodec.decode($0, type: type, id: id, rawLength: rawLength, opener: opener, decompressors: pool, what: "blob")
            }
        }
        /// The compression flag: the last byte of the envelope plaintext.
        func flag(_ env: [UInt8], type: BlobType = .data, id: BlobID) throws -> UInt8? {
            try opener.open(env, context: EnvelopeContext.blob(type, id), what: "blob").last
        }
    }

    func testCompressibleDataIsStoredCompressed() throws {
        let c = try Codec()
        let line = Array("2026-11-23 INFO coffer: backup of /home finished without errors\n".utf8)
        var plain: [UInt8] = []
        while plain.count < 256 << 10 { plain += line }
        let id = c.keys.blobID(plain)
        let env = try c.encode(plain)
        XCTAssertLessThan(env.count, plain.count / 20, "envelope \(env.count) bytes for \(plain.count) bytes of text")
        XCTAssertEqual(try c.flag(env, id: id), 1)
        XCTAssertEqual(try c.decode(env, id: id, rawLength: plain.count), plain)
    }

    func testRandomDataIsStoredRaw() throws {
        let c = try Codec()
        for count in [0, 1, 127, 128, 1000, 200 << 10] {
            let plain = storeTestBytes(count: count, seed: UInt64(count))
            let id = c.keys.blobID(plain)
            let env = try c.encode(plain)
            XCTAssertEqual(env.count, plain.count + Envelope.overhead + 1, "\(count) bytes")
            XCTAssertEqual(try c.flag(env, id: id), 0)
            XCTAssertEqual(try c.decode(env, id: id, rawLength: plain.count), plain)
        }
    }

    func testSmallDataIsNeverCompressed() throws {
        let c = try Codec()
        let plain = [UInt8](repeating: 0, count: 127)
        let id = c.keys.blobID(plain)
        let env = try c.encode(plain)
        XCTAssertEqual(env.count, 127 + Envelope.overhead + 1)
        XCTAssertEqual(try c.decode(env, id: id, rawLength: 127), plain)
    }

    func testIncompressibleSampleKeepsTheChunkRaw() throws {
        // §5: only the first 64 KiB are trial-compressed; a random sample means "store raw".
        let c = try Codec()
        let plain = storeTestBytes(count: 64 << 10, seed: 3) + [UInt8](repeating: 0, count: 256 << 10)
        let id = c.keys.blobID(plain)
        let env = try c.encode(plain)
        XCTAssertEqual(env.count, plain.count + Envelope.overhead + 1)
        XCTAssertEqual(try c.decode(env, id: id, rawLength: plain.count), plain)
    }

    func testWrongRawLengthFails() throws {
        let c = try Codec()
        let random = storeTestBytes(count: 1000, seed: 1)
        let rid = c.keys.blobID(random)
        let renv = try c.encode(random)
        assertStoreError(.corrupt) { try c.decode(renv, id: rid, rawLength: 999) }
        assertStoreError(.corrupt) { try c.decode(renv, id: rid, rawLength: 1001) }
        assertStoreError(.corrupt) { try c.decode(renv, id: rid, rawLength: 0) }

        let zeros = [UInt8](repeating: 0, count: 10_000)
        let zid = c.keys.blobID(zeros)
        let zenv = try c.encode(zeros)
        XCTAssertEqual(try c.flag(zenv, id: zid), 1)
        assertStoreError(.corrupt) { try c.decode(zenv, id: zid, rawLength: 9_999) }
        assertStoreError(.corrupt) { try c.decode(zenv, id: zid, rawLength: 10_001) }
        assertStoreError(.corrupt) { try c.decode(zenv, id: zid, rawLength: 0) }
        XCTAssertEqual(try c.decode(zenv, id: zid, rawLength: 10_000), zeros)
    }

    func testWrongIDOrTypeFails() throws {
        let c = try Codec()
        for plain in [storeTestBytes(count: 500, seed: 2), [UInt8](repeating: 7, count: 5000)] {
            let id = c.keys.blobID(plain)
            let env = try c.encode(plain)
            var other = id.bytes; other[31] ^= 1
            assertStoreError(.corrupt) { try c.decode(env, id: BlobID(bytes: other), rawLength: plain.count) }
            assertStoreError(.corrupt) { try c.decode(env, type: .tree, id: id, rawLength: plain.count) }
            XCTAssertEqual(try c.decode(env, id: id, rawLength: plain.count), plain)
        }
        // A tree blob only opens as a tree.
        let tree = Tree(nodes: [Node(name: [0x61], kind: .fifo)]).encoded()
        let tid = c.keys.blobID(tree)
        let tenv = try c.encode(tree, type: .tree)
        XCTAssertEqual(try c.decode(tenv, type: .tree, id: tid, rawLength: tree.count), tree)
        assertStoreError(.corrupt) { try c.decode(tenv, type: .data, id: tid, rawLength: tree.count) }
    }

    func testMalformedBlobPayloadsFail() throws {
        let c = try Codec()
        let id = storeTestBlobID(0x55)
        let ctx = EnvelopeContext.blob(.data, id)
        // No compression byte at all.
        assertStoreError(.corrupt) { try c.decode(try c.sealer.seal([], context: ctx), id: id, rawLength: 0) }
        // Unknown compression byte.
        assertStoreError(.corrupt) { try c.decode(try c.sealer.seal([1, 2, 3, 2], context: ctx), id: id, rawLength: 3) }
        // Compression byte 1 but not a zstd frame.
        assertStoreError(.corrupt) { try c.decode(try c.sealer.seal([1, 2, 3, 1], context: ctx), id: id, rawLength: 3) }
        // Two frames where one is expected.
        let frame = Zstd.compress([UInt8](repeating: 1, count: 1000))
        assertStoreError(.corrupt) { try c.decode(try c.sealer.seal(frame + frame + [1], context: ctx), id: id, rawLength: 2000) }
        XCTAssertEqual(try c.decode(try c.sealer.seal(frame + [1], context: ctx), id: id, rawLength: 1000),
                       [UInt8](repeating: 1, count: 1000))
    }
}
