@testable import Store
import XCTest

/// ByteWriter/ByteReader (docs/FORMAT.md preamble), Timestamp and RepositoryConfig (§2).
final class FormatTests: XCTestCase {
    // MARK: - varint / svarint

    private func encodedVarint(_ v: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.varint(v)
        return w.bytes
    }

    private func encodedSvarint(_ v: Int64) -> [UInt8] {
        var w = ByteWriter()
        w.svarint(v)
        return w.bytes
    }

    func testVarintEncodingOfEdgeValues() {
        // Unsigned LEB128: 7 bits per byte, low group first, high bit = more follows.
        XCTAssertEqual(encodedVarint(0), [0x00])
        XCTAssertEqual(encodedVarint(1), [0x01])
        XCTAssertEqual(encodedVarint(127), [0x7f])
        XCTAssertEqual(encodedVarint(128), [0x80, 0x01])
        XCTAssertEqual(encodedVarint(300), [0xac, 0x02])
        XCTAssertEqual(encodedVarint(16383), [0xff, 0x7f])
        XCTAssertEqual(encodedVarint(16384), [0x80, 0x80, 0x01])
        XCTAssertEqual(encodedVarint(UInt64(UInt32.max)), [0xff, 0xff, 0xff, 0xff, 0x0f])
        XCTAssertEqual(encodedVarint(UInt64.max), [UInt8](repeating: 0xff, count: 9) + [0x01])
    }

    func testVarintRoundTrip() throws {
        var values: [UInt64] = [0, 1, 127, 128, 255, 256, 16383, 16384, 1 << 32, UInt64.max, UInt64.max - 1, 1 << 63, (1 << 63) - 1]
        for shift in 0..<64 { values.append(1 << UInt64(shift)); values.append((1 << UInt64(shift)) - 1) }
        var w = ByteWriter()
        for v in values { w.varint(v) }
        var r = ByteReader(w.bytes, what: "test")
        for v in values { XCTAssertEqual(try r.varint(), v) }
        XCTAssertTrue(r.isAtEnd)
        XCTAssertEqual(r.remaining, 0)
    }

    func testSvarintZigZagEncoding() {
        // zig-zag: (v << 1) ^ (v >> 63)
        XCTAssertEqual(encodedSvarint(0), [0x00])
        XCTAssertEqual(encodedSvarint(-1), [0x01])
        XCTAssertEqual(encodedSvarint(1), [0x02])
        XCTAssertEqual(encodedSvarint(-2), [0x03])
        XCTAssertEqual(encodedSvarint(63), [0x7e])
        XCTAssertEqual(encodedSvarint(-64), [0x7f])
        XCTAssertEqual(encodedSvarint(64), [0x80, 0x01])
        XCTAssertEqual(encodedSvarint(Int64.max), [0xfe] + [UInt8](repeating: 0xff, count: 8) + [0x01])
        XCTAssertEqual(encodedSvarint(Int64.min), [UInt8](repeating: 0xff, count: 9) + [0x01])
    }

    func testVarintSizesMatchWhatIsWritten() {
        // Tree encoding writes length prefixes from these sizes before the values themselves.
        var values: [UInt64] = [0, 1, 127, 128, 16383, 16384, UInt64.max, UInt64.max - 1]
        for shift in 0..<64 { values.append(1 << UInt64(shift)); values.append((1 << UInt64(shift)) - 1) }
        for v in values { XCTAssertEqual(ByteWriter.varintSize(v), encodedVarint(v).count, "varint \(v)") }
        let signed: [Int64] = [0, -1, 1, 63, -64, 64, -65, Int64.max, Int64.min, Int64(Int32.min), -2_147_483_649]
        for v in signed { XCTAssertEqual(ByteWriter.svarintSize(v), encodedSvarint(v).count, "svarint \(v)") }
    }

    func testSubReaderIsBoundedAndAdvancesItsParent() throws {
        var w = ByteWriter()
        w.lengthPrefixed([0x05, 0x01, 0x02])
        w.u8(0x7f)
        var r = ByteReader(w.bytes, what: "test")
        var sub = try r.lengthPrefixedReader()
        XCTAssertEqual(sub.remaining, 3)
        XCTAssertEqual(try sub.varint(), 5)
        XCTAssertEqual(try sub.raw(2), [0x01, 0x02])
        XCTAssertTrue(sub.isAtEnd)
        XCTAssertThrowsError(try sub.u8(), "a sub-reader must not read past its value into the parent's bytes")
        XCTAssertEqual(try r.u8(), 0x7f, "the parent continues after the value")
        XCTAssertTrue(r.isAtEnd)
        var short = ByteReader([0x04, 0x01], what: "test")
        XCTAssertThrowsError(try short.lengthPrefixedReader(), "a length beyond the input is corrupt")
    }

    func testSvarintRoundTrip() throws {
        let values: [Int64] = [0, 1, -1, 63, -64, 64, -65, 127, 128, -128, -129, Int64(Int32.min), Int64(Int32.max),
                               Int64.max, Int64.min, Int64.max - 1, Int64.min + 1, -2_147_483_649]
        var w = ByteWriter()
        for v in values { w.svarint(v) }
        var r = ByteReader(w.bytes, what: "test")
        for v in values { XCTAssertEqual(try r.svarint(), v) }
        XCTAssertTrue(r.isAtEnd)
    }

    func testFixedWidthIntegersAreBigEndian() throws {
        var w = ByteWriter()
        w.u8(0xfe)
        w.u32(0x0102_0304)
        w.u64(0x1122_3344_5566_7788)
        XCTAssertEqual(w.bytes, [0xfe, 0x01, 0x02, 0x03, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
        var r = ByteReader(w.bytes, what: "test")
        XCTAssertEqual(try r.u8(), 0xfe)
        XCTAssertEqual(try r.u32(), 0x0102_0304)
        XCTAssertEqual(r.offset, 5)
        XCTAssertEqual(try r.u64(), 0x1122_3344_5566_7788)
        XCTAssertTrue(r.isAtEnd)
    }

    func testLengthPrefixedRoundTrip() throws {
        let long = storeTestBytes(count: 200, seed: 1)
        var w = ByteWriter()
        w.lengthPrefixed([UInt8]())
        w.lengthPrefixed([0x61, 0x62])
        w.lengthPrefixed(long)
        XCTAssertEqual(Array(w.bytes[0..<4]), [0x00, 0x02, 0x61, 0x62])
        XCTAssertEqual(Array(w.bytes[4..<6]), [0xc8, 0x01], "200 as a two-byte varint length")
        var r = ByteReader(w.bytes, what: "test")
        XCTAssertEqual(try r.lengthPrefixed(), [])
        XCTAssertEqual(try r.lengthPrefixed(), [0x61, 0x62])
        XCTAssertEqual(try r.lengthPrefixed(), long)
        XCTAssertTrue(r.isAtEnd)
    }

    // MARK: - Malformed input throws .corrupt

    func testTruncatedInputThrowsCorrupt() {
        assertStoreError(.corrupt) { var r = ByteReader([], what: "t"); return try r.u8() }
        assertStoreError(.corrupt) { var r = ByteReader([1, 2, 3], what: "t"); return try r.u32() }
        assertStoreError(.corrupt) { var r = ByteReader([1, 2, 3, 4, 5, 6, 7], what: "t"); return try r.u64() }
        assertStoreError(.corrupt) { var r = ByteReader([0x80], what: "t"); return try r.varint() }
        assertStoreError(.corrupt) { var r = ByteReader([0xff, 0xff, 0xff], what: "t"); return try r.varint() }
        assertStoreError(.corrupt) { var r = ByteReader([0x81], what: "t"); return try r.svarint() }
        assertStoreError(.corrupt) { var r = ByteReader([1, 2, 3, 4], what: "t"); return try r.raw(5) }
        assertStoreError(.corrupt) { var r = ByteReader([1, 2, 3, 4], what: "t"); return try r.raw(-1) }
        assertStoreError(.corrupt) { var r = ByteReader([1, 2], what: "t"); try r.skip(3) }
        assertStoreError(.corrupt) { var r = ByteReader([1, 2], what: "t"); try r.skip(-1) }
        // Declared length longer than what follows.
        assertStoreError(.corrupt) { var r = ByteReader([0x0a, 1, 2, 3], what: "t"); return try r.lengthPrefixed() }
        // A huge declared length must not reach Int conversion / allocation.
        assertStoreError(.corrupt) {
            var r = ByteReader([UInt8](repeating: 0xff, count: 9) + [0x01], what: "t"); return try r.lengthPrefixed()
        }
    }

    func testEveryPrefixOfAValidStreamThrowsCorrupt() {
        var w = ByteWriter()
        w.u32(7)
        w.varint(UInt64.max)
        w.svarint(Int64.min)
        w.lengthPrefixed(Array("hello".utf8))
        w.u64(42)
        let full = w.bytes
        func readAll(_ b: [UInt8]) throws {
            var r = ByteReader(b, what: "prefix")
            _ = try r.u32(); _ = try r.varint(); _ = try r.svarint(); _ = try r.lengthPrefixed(); _ = try r.u64()
        }
        XCTAssertNoThrow(try readAll(full))
        for n in 0..<full.count {
            assertStoreError(.corrupt, "prefix of \(n) bytes") { try readAll(Array(full[0..<n])) }
        }
    }

    func testVarintOverflowIsRejected() {
        // 11 bytes: more than 64 bits.
        let eleven = [UInt8](repeating: 0xff, count: 10) + [0x01]
        let e1 = assertStoreError(.corrupt) { var r = ByteReader(eleven, what: "t"); return try r.varint() }
        XCTAssertTrue(e1?.message.contains("overflow") ?? false, e1?.message ?? "")
        // 10 bytes whose last group sets bit 64.
        let bit64 = [UInt8](repeating: 0xff, count: 9) + [0x02]
        let e2 = assertStoreError(.corrupt) { var r = ByteReader(bit64, what: "t"); return try r.varint() }
        XCTAssertTrue(e2?.message.contains("overflow") ?? false, e2?.message ?? "")
        let bit64Only = [UInt8](repeating: 0x80, count: 9) + [0x02]
        assertStoreError(.corrupt) { var r = ByteReader(bit64Only, what: "t"); return try r.varint() }
        // The largest legal value still decodes.
        var r = ByteReader([UInt8](repeating: 0xff, count: 9) + [0x01], what: "t")
        XCTAssertEqual(try r.varint(), UInt64.max)
    }

    func testIntRejectsValuesAboveMaximum() throws {
        var w = ByteWriter()
        w.varint(UInt64(Int32.max))
        w.varint(UInt64(Int32.max) + 1)
        w.varint(11)
        var r = ByteReader(w.bytes, what: "t")
        XCTAssertEqual(try r.int(), Int(Int32.max))
        assertStoreError(.corrupt) { try r.int() }
        assertStoreError(.corrupt) { try r.int(max: 10) }
    }

    func testErrorMessageNamesTheObject() {
        let e = assertStoreError(.corrupt) { var r = ByteReader([], what: "index/abcd"); return try r.u8() }
        XCTAssertTrue(e?.message.hasPrefix("index/abcd") ?? false, e?.message ?? "")
    }

    // MARK: - Timestamp

    func testTimestampRFC3339RoundTripWithNanoseconds() throws {
        let t = Timestamp(seconds: 1_795_140_000, nanoseconds: 123_456_789)
        XCTAssertEqual(t.rfc3339, "2026-11-20T02:00:00.123456789Z")
        XCTAssertEqual(Timestamp(rfc3339: t.rfc3339), t)

        let cases: [Timestamp] = [
            Timestamp(seconds: 0, nanoseconds: 0),
            Timestamp(seconds: 0, nanoseconds: 1),
            Timestamp(seconds: 951_868_799, nanoseconds: 999_999_999),   // 2000-02-29T23:59:59
            Timestamp(seconds: -1, nanoseconds: 500_000_000),            // before the epoch
            Timestamp(seconds: -2_147_483_648, nanoseconds: 7),
            Timestamp(seconds: 4_102_444_800, nanoseconds: 10),          // 2100-01-01
        ]
        for c in cases {
            XCTAssertEqual(Timestamp(rfc3339: c.rfc3339), c, c.rfc3339)
        }
        XCTAssertEqual(Timestamp(seconds: 0, nanoseconds: 1).rfc3339, "1970-01-01T00:00:00.000000001Z")
        XCTAssertEqual(Timestamp(seconds: -1, nanoseconds: 500_000_000).rfc3339, "1969-12-31T23:59:59.500000000Z")
        XCTAssertEqual(Timestamp(seconds: 951_868_799, nanoseconds: 0).rfc3339, "2000-02-29T23:59:59.000000000Z")
    }

    func testTimestampSecondPrecision() {
        let t = Timestamp(seconds: 1_795_140_000, nanoseconds: 987_654_321)
        XCTAssertEqual(t.rfc3339Seconds, "2026-11-20T02:00:00Z")
        XCTAssertEqual(t.display, "2026-11-20 02:00:00")
        XCTAssertEqual(Timestamp(rfc3339: "2026-11-20T02:00:00Z"), Timestamp(seconds: 1_795_140_000, nanoseconds: 0))
        XCTAssertEqual(Timestamp(rfc3339: "1970-01-01T00:00:00Z"), Timestamp(seconds: 0, nanoseconds: 0))
        // Fewer than nine fraction digits are scaled.
        XCTAssertEqual(Timestamp(rfc3339: "2026-11-20T02:00:00.5Z"), Timestamp(seconds: 1_795_140_000, nanoseconds: 500_000_000))
        XCTAssertEqual(Timestamp(rfc3339: "2026-11-20T02:00:00.000123Z"), Timestamp(seconds: 1_795_140_000, nanoseconds: 123_000))
    }

    func testTimestampParseRejectsMalformedStrings() {
        for s in ["", "2026-11-20", "2026-11-20T02:00:00", "2026-11-20T02:00:00.Z", "2026-11-20T02:00:00.1234567890Z",
                  "2026-11-20T02:00:00+01:00", "2026-1a-20T02:00:00Z", "2026-11-20T02:00:00.12a4Z"] {
            XCTAssertNil(Timestamp(rfc3339: s), s)
        }
    }

    func testTimestampOrdering() {
        XCTAssertLessThan(Timestamp(seconds: 1, nanoseconds: 999_999_999), Timestamp(seconds: 2, nanoseconds: 0))
        XCTAssertLessThan(Timestamp(seconds: -1, nanoseconds: 5), Timestamp(seconds: -1, nanoseconds: 6))
        XCTAssertFalse(Timestamp(seconds: 3, nanoseconds: 0) < Timestamp(seconds: 3, nanoseconds: 0))
    }

    // MARK: - RepositoryConfig

    private func configJSON(version: Int = 1, id: String = String(repeating: "ab", count: 32),
                            min: Int = 524_288, avg: Int = 1_048_576, max: Int = 8_388_608, pack: Int = 33_554_432,
                            normalization: Int? = nil) -> [UInt8] {
        let level = normalization.map { "\"chunker_normalization\": \($0), " } ?? ""
        return Array("""
            { "version": \(version), "id": "\(id)", "created": "2026-11-23T21:40:00.123456789Z",
              "chunker_min_size": \(min), "chunker_avg_size": \(avg), "chunker_max_size": \(max),
              \(level)"pack_size": \(pack) }
            """.utf8)
    }

    func testConfigNormalizationLevel() throws {
        // Written before the field existed: level 2, as those repositories were chunked.
        XCTAssertEqual(try RepositoryConfig.decode(configJSON(), location: "/r").chunkerParameters.normalization, 2)
        let c = try RepositoryConfig.decode(configJSON(min: 262_144, avg: 524_288, normalization: 1), location: "/r")
        XCTAssertEqual(c.chunkerParameters, ChunkerParameters.standard)
        XCTAssertEqual(RepositoryConfig.new().chunkerParameters, ChunkerParameters.standard)
        XCTAssertEqual(ChunkerParameters.standard.normalization, 1)
        assertStoreError(.corrupt) { try RepositoryConfig.decode(configJSON(normalization: 4), location: "/r") }
        assertStoreError(.corrupt) { try RepositoryConfig.decode(configJSON(normalization: -1), location: "/r") }
    }

    func testConfigDecodesTheDocumentedExample() throws {
        let c = try RepositoryConfig.decode(configJSON(), location: "/repo")
        XCTAssertEqual(c.version, 1)
        XCTAssertEqual(c.id, String(repeating: "ab", count: 32))
        XCTAssertEqual(c.idBytes, [UInt8](repeating: 0xab, count: 32))
        XCTAssertEqual(c.chunkerMinSize, 524_288)
        XCTAssertEqual(c.chunkerAvgSize, 1_048_576)
        XCTAssertEqual(c.chunkerMaxSize, 8_388_608)
        XCTAssertEqual(c.packSize, 33_554_432)
        XCTAssertEqual(c.created, "2026-11-23T21:40:00.123456789Z")
    }

    /// The version fixes how packs are named: version 1 (older repositories) by the whole file,
    /// version 2 (what init writes) by header and trailer.
    func testConfigVersionFixesPackNaming() throws {
        XCTAssertEqual(try RepositoryConfig.decode(configJSON(version: 1), location: "/r").packNaming, .wholeFile)
        XCTAssertEqual(try RepositoryConfig.decode(configJSON(version: 2), location: "/r").packNaming, .header)
        XCTAssertEqual(RepositoryConfig.new().version, 2)
        XCTAssertEqual(RepositoryConfig.new().packNaming, .header)
    }

    func testConfigRoundTrip() throws {
        let c = RepositoryConfig.new()
        XCTAssertEqual(c.version, RepositoryConfig.currentVersion)
        XCTAssertEqual(c.idBytes.count, 32)
        XCTAssertNotNil(Timestamp(rfc3339: c.created))
        let d = try RepositoryConfig.decode(try c.encoded(), location: "/repo")
        XCTAssertEqual(d.id, c.id)
        XCTAssertEqual(d.created, c.created)
        XCTAssertEqual(d.chunkerMinSize, c.chunkerMinSize)
        XCTAssertEqual(d.chunkerAvgSize, c.chunkerAvgSize)
        XCTAssertEqual(d.chunkerMaxSize, c.chunkerMaxSize)
        XCTAssertEqual(d.chunkerNormalization, c.chunkerNormalization)
        XCTAssertEqual(d.packSize, c.packSize)
        XCTAssertNotEqual(RepositoryConfig.new().id, c.id, "ids are random")
    }

    func testConfigWithNewerVersionIsUnsupported() {
        let e = assertStoreError(.unsupported) { try RepositoryConfig.decode(configJSON(version: 3), location: "/srv/repo") }
        XCTAssertTrue(e?.message.contains("not supported") ?? false, e?.message ?? "")
        XCTAssertTrue(e?.message.contains("3") ?? false, "names the version: \(e?.message ?? "")")
        XCTAssertTrue(e?.message.contains("/srv/repo") ?? false, "names the location: \(e?.message ?? "")")
        assertStoreError(.unsupported) { try RepositoryConfig.decode(configJSON(version: 0), location: "/r") }
    }

    func testConfigWithImplausibleParametersIsCorrupt() {
        let bad: [(String, [UInt8])] = [
            ("short id", configJSON(id: String(repeating: "ab", count: 31))),
            ("non-hex id", configJSON(id: String(repeating: "zz", count: 32))),
            ("tiny min", configJSON(min: 16)),
            ("min >= avg", configJSON(min: 1_048_576)),
            ("avg >= max", configJSON(max: 1_048_576)),
            ("avg not a power of two", configJSON(avg: 1_000_000)),
            ("max above 64 MiB", configJSON(max: 128 << 20)),
            ("pack below 1 MiB", configJSON(pack: 1000)),
            ("pack above 1 GiB", configJSON(pack: 2 << 30)),
        ]
        for (label, json) in bad {
            let e = assertStoreError(.corrupt, label) { try RepositoryConfig.decode(json, location: "/r") }
            XCTAssertTrue(e?.message.contains("implausible") ?? false, "\(label): \(e?.message ?? "")")
        }
    }

    func testConfigThatIsNotJSONIsCorrupt() {
        assertStoreError(.corrupt) { try RepositoryConfig.decode(Array("not json".utf8), location: "/r") }
        assertStoreError(.corrupt) { try RepositoryConfig.decode(Array("{\"version\": 1}".utf8), location: "/r") }
    }

    func testBlobIDKeepsItsBytesAndOrdersLikeThem() throws {
        var rng = SystemRandomNumberGenerator()
        var ids: [[UInt8]] = (0..<200).map { _ in (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        // Ids that differ only in a late byte, and the extremes.
        ids.append([UInt8](repeating: 0, count: 31) + [1])
        ids.append([UInt8](repeating: 0, count: 32))
        ids.append([UInt8](repeating: 0xff, count: 32))
        ids.append([UInt8](repeating: 0, count: 24) + [0x80] + [UInt8](repeating: 0, count: 7))
        for b in ids {
            let id = BlobID(bytes: b)
            XCTAssertEqual(id.bytes, b)
            XCTAssertEqual(BlobID(hex: id.hex), id)
            XCTAssertEqual(id.hex, Hex.encode(b))
        }
        let sorted = ids.map { BlobID(bytes: $0) }.sorted().map(\.bytes)
        XCTAssertEqual(sorted, ids.sorted { $0.lexicographicallyPrecedes($1) })
        XCTAssertNotEqual(BlobID(bytes: ids[0]), BlobID(bytes: ids[1]))

        var w = ByteWriter()
        for b in ids { w.blobID(BlobID(bytes: b)) }
        XCTAssertEqual(w.bytes, Array(ids.joined()))
        var r = ByteReader(w.bytes, what: "ids")
        for b in ids { XCTAssertEqual(try r.blobID(), BlobID(bytes: b)) }
        XCTAssertTrue(r.isAtEnd)
        var short = ByteReader([UInt8](repeating: 1, count: 31), what: "short id")
        assertStoreError(.corrupt) { _ = try short.blobID() }
    }
}
