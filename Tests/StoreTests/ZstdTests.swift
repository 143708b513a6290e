import XCTest
import Store

final class ZstdTests: XCTestCase {
    private func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    private let text: [UInt8] = Array(String(repeating: "Coffer keeps encrypted, deduplicated backups. ", count: 2000).utf8)

    func testRoundTripText() throws {
        let compressed = Zstd.compress(text)
        XCTAssertLessThan(compressed.count, text.count / 10, "repetitive text should compress well")
        XCTAssertEqual(Array(compressed.prefix(4)), [0x28, 0xB5, 0x2F, 0xFD], "zstd frame magic")
        XCTAssertEqual(try Zstd.decompress(compressed, expectedSize: text.count), text)
    }

    func testRoundTripRandomWithReusedContexts() throws {
        let compressor = ZstdCompressor(level: 3)
        let decompressor = ZstdDecompressor()
        for size in [1, 100, 65_536, 1 << 20, 3] {
            let data = randomBytes(size)
            let compressed = data.withUnsafeBytes { compressor.compress($0) }
            XCTAssertLessThanOrEqual(compressed.count, size + 64)
            let restored = try compressed.withUnsafeBytes { try decompressor.decompress($0, expectedSize: size) }
            XCTAssertEqual(restored, data)
        }
    }

    /// The trial on the first bytes decides; a compressible input is then compressed exactly
    /// once into one frame that declares its size, and the context stays usable.
    func testCompressIfShrinking() throws {
        let compressor = ZstdCompressor(level: 1)
        let decompressor = ZstdDecompressor()
        func run(_ data: [UInt8], sample: Int = 65_536) -> [UInt8]? {
            data.withUnsafeBytes { compressor.compressIfShrinking($0, sampleSize: sample, percent: 94) { Array($0) } }
        }
        XCTAssertNil(run(randomBytes(300_000)), "random data is left alone")
        for data in [text, Array(text.prefix(1000)), text + randomBytes(200_000)] {   // longer, shorter than the sample
            let frame = try XCTUnwrap(run(data))
            XCTAssertEqual(try frame.withUnsafeBytes { try decompressor.decompress($0, expectedSize: data.count) }, data)
        }
        XCTAssertLessThan(try XCTUnwrap(run(text)).count, text.count / 10)
        // Text after an incompressible sample is not compressed: the sample decides.
        XCTAssertNil(run(randomBytes(70_000) + text), "the sample is what decides")
        // After a refusal and a frame, one-shot compression on the same context still works.
        let again = text.withUnsafeBytes { compressor.compress($0) }
        XCTAssertEqual(try again.withUnsafeBytes { try decompressor.decompress($0, expectedSize: text.count) }, text)
    }

    func testRoundTripAtOtherLevels() throws {
        for level: Int32 in [-5, 1, 19, 1000] {
            let compressed = Zstd.compress(text, level: level)
            XCTAssertEqual(try Zstd.decompress(compressed, expectedSize: text.count), text, "level \(level)")
        }
        XCTAssertEqual(ZstdCompressor(level: 1000).level, 22, "levels are clamped to ZSTD_maxCLevel")
    }

    func testRoundTripEmpty() throws {
        let compressed = Zstd.compress([])
        XCTAssertFalse(compressed.isEmpty, "an empty input still makes a frame")
        XCTAssertEqual(try Zstd.decompress(compressed, expectedSize: 0), [])
        XCTAssertThrowsError(try Zstd.decompress(compressed, expectedSize: 1))
        XCTAssertThrowsError(try Zstd.decompress([], expectedSize: 0), "empty input is not a frame")
    }

    func testCorruptFrameThrows() throws {
        let data = randomBytes(10_000) + text
        let compressed = Zstd.compress(data)
        XCTAssertEqual(try Zstd.decompress(compressed, expectedSize: data.count), data)

        var badMagic = compressed
        badMagic[0] ^= 0xFF
        XCTAssertThrowsError(try Zstd.decompress(badMagic, expectedSize: data.count)) { error in
            XCTAssertTrue(error is ZstdError)
        }

        XCTAssertThrowsError(try Zstd.decompress(Array(compressed.dropLast(5)), expectedSize: data.count),
                             "truncated frame")
        XCTAssertThrowsError(try Zstd.decompress(compressed + [0x00, 0x01], expectedSize: data.count),
                             "trailing bytes after the frame")
        XCTAssertThrowsError(try Zstd.decompress(compressed + compressed, expectedSize: data.count),
                             "two frames")
        XCTAssertThrowsError(try Zstd.decompress(randomBytes(500), expectedSize: 500))

        // Flipping a byte in the compressed body must never yield the original silently.
        var flipped = compressed
        flipped[compressed.count / 2] ^= 0x55
        if let output = try? Zstd.decompress(flipped, expectedSize: data.count) {
            XCTAssertNotEqual(output, data)
        }
    }

    func testSizeMismatchThrows() {
        let compressed = Zstd.compress(text)
        for wrong in [text.count - 1, text.count + 1, 0, -1] {
            XCTAssertThrowsError(try Zstd.decompress(compressed, expectedSize: wrong)) { error in
                guard let error = error as? ZstdError else { return XCTFail("not a ZstdError: \(error)") }
                XCTAssertFalse(error.message.isEmpty)
                XCTAssertTrue(error.description.hasPrefix("zstd: "))
            }
        }
    }

    func testDecompressorRecoversAfterError() throws {
        let decompressor = ZstdDecompressor()
        let compressed = Zstd.compress(text)
        var corrupt = compressed
        corrupt[corrupt.count - 3] ^= 0xFF
        _ = try? corrupt.withUnsafeBytes { try decompressor.decompress($0, expectedSize: text.count) }
        let restored = try compressed.withUnsafeBytes { try decompressor.decompress($0, expectedSize: text.count) }
        XCTAssertEqual(restored, text)
    }
}
