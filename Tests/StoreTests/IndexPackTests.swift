import Crypto
@testable import Store
import XCTest

/// Index files (docs/FORMAT.md §7) and packs (§6).
final class IndexPackTests: XCTestCase {
    private var dir: StoreTestDirectory!

    override func setUp() { dir = StoreTestDirectory("coffer-packs") }
    override func tearDown() { dir.remove() }

    private func samplePacks() -> [IndexFile.Pack] {
        [
            IndexFile.Pack(id: String(repeating: "ab", count: 32), entries: [
                PackEntry(type: .data, id: storeTestBlobID(0x11), offset: 0, length: 100, rawLength: 51),
                PackEntry(type: .tree, id: storeTestBlobID(0x22), offset: 100, length: 300, rawLength: 1000),
            ]),
            IndexFile.Pack(id: String(repeating: "cd", count: 32), entries: []),
        ]
    }

    // MARK: - IndexFile

    func testIndexRoundTripWithSeveralPacks() throws {
        var packs: [IndexFile.Pack] = []
        for p in 0..<5 {
            var offset = 0
            var entries: [PackEntry] = []
            for b in 0..<(p * 7) {
                let len = 49 + (b * 977 + p) % 70_000
                entries.append(PackEntry(type: b % 3 == 0 ? .tree : .data,
                                         id: BlobID(bytes: storeTestBytes(count: 32, seed: UInt64(p * 1000 + b))),
                                         offset: offset, length: len, rawLength: len * 3))
                offset += len
            }
            packs.append(IndexFile.Pack(id: Hex.encode(storeTestBytes(count: 32, seed: UInt64(99 + p))), entries: entries))
        }
        // Large values (pack offsets near the 1 GiB pack-size limit).
        packs[1].entries.append(PackEntry(type: .data, id: storeTestBlobID(0xee), offset: (1 << 30) - 100,
                                          length: 99, rawLength: Int(Int32.max)))
        let file = IndexFile(packs: packs)
        let bytes = file.encoded()
        let decoded = try IndexFile.decode(bytes, what: "index")
        XCTAssertEqual(decoded.packs.count, packs.count)
        for (a, b) in zip(decoded.packs, packs) {
            XCTAssertEqual(a.id, b.id)
            XCTAssertEqual(a.entries, b.entries)
        }
        XCTAssertEqual(decoded.encoded(), bytes)
        XCTAssertEqual(try IndexFile.decode(IndexFile(packs: []).encoded(), what: "i").packs.count, 0)
    }

    func testIndexDecodeRejectsBadMagicAndVersion() {
        let good = IndexFile(packs: samplePacks()).encoded()
        var magic = good; magic[0] = UInt8(ascii: "X")
        assertStoreError(.corrupt) { try IndexFile.decode(magic, what: "i") }
        var version = good; version[4] = 2
        assertStoreError(.corrupt) { try IndexFile.decode(version, what: "i") }
        assertStoreError(.corrupt) { try IndexFile.decode([], what: "i") }
    }

    func testIndexDecodeRejectsTruncatedInputAndTrailingBytes() {
        let good = IndexFile(packs: samplePacks()).encoded()
        XCTAssertNoThrow(try IndexFile.decode(good, what: "i"))
        for cut in 0..<good.count {
            assertStoreError(.corrupt, "cut at \(cut)") { try IndexFile.decode(Array(good.prefix(cut)), what: "i") }
        }
        assertStoreError(.corrupt) { try IndexFile.decode(good + [0], what: "i") }
        // A pack count far larger than the data allows.
        assertStoreError(.corrupt) { try IndexFile.decode(Array("CFIX".utf8) + [1, 0xff, 0xff, 0xff, 0x7f], what: "i") }
    }

    func testIndexDecodeRejectsUnknownBlobType() {
        let good = IndexFile(packs: samplePacks()).encoded()
        // Layout: "CFIX" 1 | count | 32-byte pack id | blob count | type ...
        let typeOffset = 4 + 1 + 1 + 32 + 1
        XCTAssertEqual(good[typeOffset], BlobType.data.rawValue)
        for t: UInt8 in [0, 3, 0xff] {
            var bad = good; bad[typeOffset] = t
            let e = assertStoreError(.corrupt, "type \(t)") { try IndexFile.decode(bad, what: "index/1234") }
            XCTAssertTrue(e?.message.contains("blob type") ?? false, e?.message ?? "")
        }
    }

    /// Frozen sample: the index format of §7, byte for byte.
    func testFrozenIndexEncoding() throws {
        let golden = "43464958" + "01" + "02"
            + String(repeating: "ab", count: 32) + "02"
            + "01" + String(repeating: "11", count: 32) + "00" + "64" + "33"
            + "02" + String(repeating: "22", count: 32) + "64" + "ac02" + "e807"
            + String(repeating: "cd", count: 32) + "00"
        XCTAssertEqual(Hex.encode(IndexFile(packs: samplePacks()).encoded()), golden)
        let decoded = try IndexFile.decode(storeTestHex(golden), what: "golden")
        XCTAssertEqual(decoded.packs.map(\.id), samplePacks().map(\.id))
        XCTAssertEqual(decoded.packs.map(\.entries), samplePacks().map(\.entries))
    }

    // MARK: - Pack header

    /// Frozen sample: the pack header plaintext of §6, byte for byte.
    func testFrozenPackHeaderEncoding() throws {
        let entries = samplePacks()[0].entries
        let golden = "43465048" + "01" + "02"
            + "01" + String(repeating: "11", count: 32) + "64" + "33"
            + "02" + String(repeating: "22", count: 32) + "ac02" + "e807"
        XCTAssertEqual(Hex.encode(PackFormat.encodeHeader(entries)), golden)
        XCTAssertEqual(try PackFormat.decodeHeader(storeTestHex(golden), what: "golden"), entries)
    }

    func testPackHeaderDecodeRejectsMalformedInput() {
        let good = PackFormat.encodeHeader(samplePacks()[0].entries)
        for cut in 0..<good.count {
            assertStoreError(.corrupt, "cut at \(cut)") { try PackFormat.decodeHeader(Array(good.prefix(cut)), what: "p") }
        }
        var magic = good; magic[2] = 0
        assertStoreError(.corrupt) { try PackFormat.decodeHeader(magic, what: "p") }
        var version = good; version[4] = 9
        assertStoreError(.corrupt) { try PackFormat.decodeHeader(version, what: "p") }
        var type = good; type[6] = 7
        assertStoreError(.corrupt) { try PackFormat.decodeHeader(type, what: "p") }
    }

    // MARK: - Packer

    private struct Fixture {
        let backend: LocalBackend
        let keys: RepositoryKeys
        let sealer: Sealer
        let opener: Opener
        let compressor = ZstdCompressor()
        let decompressors = ObjectPool { ZstdDecompressor() }
    }

    private func makeFixture() throws -> Fixture {
        let backend = LocalBackend(path: dir.appending("repo"))
        try backend.create()
        let keys = try StoreTestKeys.make()
        return Fixture(backend: backend, keys: keys, sealer: try Sealer(keys: keys), opener: Opener(keys: keys))
    }

    private struct Added {
        let type: BlobType
        let id: BlobID
        let plain: [UInt8]
        let envelope: [UInt8]
    }

    private func blob(_ f: Fixture, _ plain: [UInt8], _ type: BlobType = .data) throws -> Added {
        let id = f.keys.blobID(plain)
        let env = try plain.withUnsafeBytes {
            try BlobCodec.encode($0, type: type, id: id, compressor: f.compressor, sealer: f.sealer)
        }
        return Added(type: type, id: id, plain: plain, envelope: env)
    }

    /// Checks one published pack: its name (SHA-256 of the header envelope and trailer, or of
    /// the whole file), header lists the blobs with their offsets, each blob decodes.
    private func verifyPack(_ f: Fixture, _ finished: Packer.Finished, blobs: [Added], naming: PackNaming,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let bytes = try f.backend.get(try ObjectName(.packs, finished.id))
        XCTAssertEqual(bytes.count, finished.size, file: file, line: line)
        XCTAssertEqual(Array(bytes.suffix(4)), Array("CFP1".utf8), file: file, line: line)
        let n = bytes.count - 8
        let headerLength = Int(bytes[n]) << 24 | Int(bytes[n + 1]) << 16 | Int(bytes[n + 2]) << 8 | Int(bytes[n + 3])
        switch naming {
        case .wholeFile:
            XCTAssertEqual(Hex.encode(SHA256.hash(bytes)), finished.id, "pack name is the SHA-256 of the file", file: file, line: line)
        case .header:
            XCTAssertEqual(Hex.encode(SHA256.hash(Array(bytes.suffix(headerLength + 8)))), finished.id,
                           "pack name is the SHA-256 of header envelope and trailer", file: file, line: line)
            XCTAssertNotEqual(Hex.encode(SHA256.hash(bytes)), finished.id, file: file, line: line)
        }
        XCTAssertEqual(PackFormat.name(of: bytes, naming: naming), finished.id, "what check recomputes", file: file, line: line)
        let entries = try PackFormat.readHeader(bytes, opener: f.opener, what: "pack")
        XCTAssertEqual(entries, finished.entries, file: file, line: line)
        XCTAssertEqual(entries.count, blobs.count, file: file, line: line)
        var offset = 0
        for (e, b) in zip(entries, blobs) {
            XCTAssertEqual(e.type, b.type, file: file, line: line)
            XCTAssertEqual(e.id, b.id, file: file, line: line)
            XCTAssertEqual(e.offset, offset, file: file, line: line)
            XCTAssertEqual(e.length, b.envelope.count, file: file, line: line)
            XCTAssertEqual(e.rawLength, b.plain.count, file: file, line: line)
            XCTAssertEqual(Array(bytes[e.offset..<(e.offset + e.length)]), b.envelope, file: file, line: line)
            let plain = try bytes[e.offset..<(e.offset + e.length)].withUnsafeBytes {
                try BlobCodec.decode($0, type: e.type, id: e.id, rawLength: e.rawLength, opener: f.opener,
                                     decompressors: f.decompressors, what: "blob")
            }
            XCTAssertEqual(plain, b.plain, file: file, line: line)
            offset += e.length
        }
        // Header envelope + u32 length + magic close the file.
        let p = bytes.count - 8
        let hlen = Int(UInt32(bytes[p]) << 24 | UInt32(bytes[p + 1]) << 16 | UInt32(bytes[p + 2]) << 8 | UInt32(bytes[p + 3]))
        XCTAssertEqual(offset + hlen + 8, bytes.count, file: file, line: line)
    }

    func testPackerWritesSelfDescribingPacks() throws {
        try packerWritesSelfDescribingPacks(naming: .header)
    }

    /// Version-1 repositories keep naming packs by the whole file.
    func testPackerWritesSelfDescribingPacksNamedByTheWholeFile() throws {
        try packerWritesSelfDescribingPacks(naming: .wholeFile)
    }

    private func packerWritesSelfDescribingPacks(naming: PackNaming) throws {
        let f = try makeFixture()
        let packer = Packer(backend: f.backend, sealer: f.sealer, targetSize: 10_000, naming: naming)
        let inputs: [[UInt8]] = [
            storeTestBytes(count: 3000, seed: 1),
            [UInt8](repeating: 0x41, count: 5000),                  // compressible
            storeTestBytes(count: 1, seed: 2),
            [],
            storeTestBytes(count: 8000, seed: 3),                   // crosses 10 000: closes pack 1
            storeTestBytes(count: 2000, seed: 4),
            Array(Tree(nodes: [Node(name: [0x61], kind: .file)]).encoded()),
        ]
        var finished: [Packer.Finished] = []
        var added: [Added] = []
        for (i, plain) in inputs.enumerated() {
            let b = try blob(f, plain, i == inputs.count - 1 ? .tree : .data)
            added.append(b)
            if let done = try packer.add(type: b.type, id: b.id, rawLength: plain.count, envelope: b.envelope) {
                finished.append(done)
            }
        }
        XCTAssertEqual(finished.count, 1, "the pack closes once it reaches targetSize")
        if let last = try packer.flush() { finished.append(last) }
        XCTAssertNil(try packer.flush(), "nothing left to flush")
        XCTAssertEqual(finished.count, 2)
        try verifyPack(f, finished[0], blobs: Array(added[0..<5]), naming: naming)
        try verifyPack(f, finished[1], blobs: Array(added[5...]), naming: naming)

        let listed = try f.backend.list(.packs).map(\.name.id)
        XCTAssertEqual(listed, finished.map(\.id).sorted())
        XCTAssertEqual(try Posix.readDirectory(f.backend.stagingDirectory), [], "staged files are gone")
        // Published under data/<first two hex digits>/.
        let p = finished[0].id
        XCTAssertNotNil(storeTestReadFile(f.backend.root.appending("data").appending(String(p.prefix(2))).appending(p)))
    }

    func testPackerAbandonRemovesStagedFiles() throws {
        let f = try makeFixture()
        let packer = Packer(backend: f.backend, sealer: f.sealer, targetSize: 1 << 20, naming: .header)
        let b = try blob(f, storeTestBytes(count: 100, seed: 5))
        XCTAssertNil(try packer.add(type: .data, id: b.id, rawLength: 100, envelope: b.envelope))
        XCTAssertEqual(try Posix.readDirectory(f.backend.stagingDirectory).count, 1)
        packer.abandon()
        XCTAssertEqual(try Posix.readDirectory(f.backend.stagingDirectory), [])
        XCTAssertNil(try packer.flush())
        XCTAssertEqual(try f.backend.list(.packs), [])
    }

    /// A sealed pack is fsync'd and published in the background: `add` hands back the
    /// finished pack while its publication still waits, and `flush` returns only once every
    /// pack is published (an index may name them from then on).
    func testPackerPublishesInTheBackgroundAndFlushWaitsForIt() throws {
        let f = try makeFixture()
        let gated = GatedBackend(f.backend)
        let packer = Packer(backend: gated, sealer: f.sealer, targetSize: 1000, naming: .header)
        var finished: [Packer.Finished] = []
        for i in 0..<3 {
            let b = try blob(f, storeTestBytes(count: 1500, seed: UInt64(40 + i)))
            finished.append(try XCTUnwrap(try packer.add(type: .data, id: b.id, rawLength: 1500, envelope: b.envelope),
                                          "each blob fills a pack"))
        }
        // Every add returned although no publication could finish.
        XCTAssertFalse(gated.isOpen, "add waited for a publication")
        XCTAssertEqual(try f.backend.list(.packs), [], "nothing is published while the gate is closed")
        XCTAssertEqual(try Posix.readDirectory(f.backend.stagingDirectory).count, 3)
        gated.open()
        XCTAssertNil(try packer.flush())
        XCTAssertEqual(try f.backend.list(.packs).map(\.name.id), finished.map(\.id).sorted(),
                       "flush returned before every sealed pack was published")
        XCTAssertEqual(try Posix.readDirectory(f.backend.stagingDirectory), [])
    }

    /// A publication that fails surfaces from the next `add` and from `flush`, and `abandon`
    /// then removes every staged file.
    func testPackerReportsAFailedPublication() throws {
        let f = try makeFixture()
        let failing = GatedBackend(f.backend, failWith: BackendError.io("link data/ab/abcd: No space left on device"))
        failing.open()
        let packer = Packer(backend: failing, sealer: f.sealer, targetSize: 1000, naming: .header)
        let b = try blob(f, storeTestBytes(count: 1500, seed: 50))
        XCTAssertNotNil(try packer.add(type: .data, id: b.id, rawLength: 1500, envelope: b.envelope))
        let small = try blob(f, storeTestBytes(count: 100, seed: 51))
        _ = try? packer.add(type: .data, id: small.id, rawLength: 100, envelope: small.envelope)
        let e = assertStoreError(.io) { try packer.flush() }
        XCTAssertTrue(e?.message.contains("No space left on device") ?? false, e?.message ?? "")
        assertStoreError(.io, "add after a failed publication") {
            try packer.add(type: .data, id: small.id, rawLength: 100, envelope: small.envelope)
        }
        packer.abandon()
        XCTAssertEqual(try Posix.readDirectory(f.backend.stagingDirectory), [])
        XCTAssertEqual(try f.backend.list(.packs), [])
    }

    func testReadHeaderRejectsDamagedPacks() throws {
        let f = try makeFixture()
        let packer = Packer(backend: f.backend, sealer: f.sealer, targetSize: 1 << 20, naming: .header)
        for i in 0..<3 {
            let b = try blob(f, storeTestBytes(count: 500, seed: UInt64(10 + i)))
            _ = try packer.add(type: .data, id: b.id, rawLength: 500, envelope: b.envelope)
        }
        let done = try XCTUnwrap(try packer.flush())
        let bytes = try f.backend.get(try ObjectName(.packs, done.id))
        XCTAssertEqual(try PackFormat.readHeader(bytes, opener: f.opener, what: "pack").count, 3)

        // Every truncation (from either end) is rejected.
        for cut in stride(from: 0, to: bytes.count, by: 37) {
            assertStoreError(.corrupt, "prefix \(cut)") {
                try PackFormat.readHeader(Array(bytes.prefix(cut)), opener: f.opener, what: "pack")
            }
        }
        for n in [1, 8, 100, 600, bytes.count - 1] {
            assertStoreError(.corrupt, "dropping the first \(n) bytes") {
                try PackFormat.readHeader(Array(bytes.dropFirst(n)), opener: f.opener, what: "pack")
            }
        }
        // Extra bytes before the header (a blob longer than the header says).
        assertStoreError(.corrupt) { try PackFormat.readHeader([0] + bytes, opener: f.opener, what: "pack") }
        // A header length pointing outside the pack.
        var hugeLength = bytes
        hugeLength[bytes.count - 8] = 0x7f
        assertStoreError(.corrupt) { try PackFormat.readHeader(hugeLength, opener: f.opener, what: "pack") }
        // A flipped byte inside the header envelope.
        var flipped = bytes
        flipped[bytes.count - 20] ^= 0x01
        assertStoreError(.corrupt) { try PackFormat.readHeader(flipped, opener: f.opener, what: "pack") }
        // Wrong keys.
        let other = Opener(keys: try StoreTestKeys.make(repositoryID: [UInt8](repeating: 1, count: 32)))
        assertStoreError(.corrupt) { try PackFormat.readHeader(bytes, opener: other, what: "pack") }
    }

    func testEmptyPackHeaderWithNoBlobsIsConsistent() throws {
        // A pack holding only a header that lists no blobs: readHeader returns [] (offset 0 == header start).
        let f = try makeFixture()
        let header = try f.sealer.seal(PackFormat.encodeHeader([]), context: EnvelopeContext.packHeader)
        let n = UInt32(header.count)
        let pack = header + [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + Array("CFP1".utf8)
        XCTAssertEqual(try PackFormat.readHeader(pack, opener: f.opener, what: "p"), [])
        // The header sealed under another context (e.g. an index) is refused.
        let asIndex = try f.sealer.seal(PackFormat.encodeHeader([]), context: EnvelopeContext.index)
        let bad = asIndex + Array(pack.suffix(8))
        assertStoreError(.corrupt) { try PackFormat.readHeader(bad, opener: f.opener, what: "p") }
    }
}

/// Forwards to a local backend; `putFile` waits until `open()` (at most 10 s, so a packer that
/// publishes inline fails the test instead of hanging it), then fails with `failWith` if set.
final class GatedBackend: AppendOnlyBackend, @unchecked Sendable {
    private let inner: LocalBackend
    private let failure: Error?
    private let gate = Condition()
    private var opened = false

    init(_ inner: LocalBackend, failWith failure: Error? = nil) {
        self.inner = inner
        self.failure = failure
    }

    var isOpen: Bool { gate.withLock { opened } }
    func open() { gate.withLock { opened = true; gate.broadcast() } }

    var location: String { inner.location }
    var stagingDirectory: RawPath { inner.stagingDirectory }
    func get(_ name: ObjectName, range: Range<Int64>?) throws -> [UInt8] { try inner.get(name, range: range) }
    func stat(_ name: ObjectName) throws -> ObjectInfo { try inner.stat(name) }
    func list(_ kind: ObjectKind) throws -> [ObjectInfo] { try inner.list(kind) }
    func put(_ name: ObjectName, _ bytes: [UInt8]) throws { try inner.put(name, bytes) }
    func putFile(_ name: ObjectName, from path: RawPath) throws {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_sec += 10
        gate.withLock {
            while !opened { if gate.timedWait(until: deadline) { opened = true } }
        }
        if let failure {
            try? Posix.remove(path)
            throw failure
        }
        try inner.putFile(name, from: path)
    }
}
