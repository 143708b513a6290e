import Foundation
import XCTest
import Store

/// splitmix64 (Steele, Lea & Flood 2014), written out independently of the implementation.
private func splitmix64(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// The documented mask: `bits` one-bits spread evenly over bits 15...62.
private func referenceMask(bits: Int) -> UInt64 {
    (0..<bits).reduce(UInt64(0)) { $0 | 1 << UInt64(62 - ($1 * 48) / bits) }
}

/// Deterministic pseudo-random bytes (splitmix64).
private func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var state = seed
    bytes.withUnsafeMutableBytes { raw in
        var i = 0
        while i < count {
            let word = splitmix64(&state)
            let n = min(8, count - i)
            withUnsafeBytes(of: word.littleEndian) { w in
                raw.baseAddress!.advanced(by: i).copyMemory(from: w.baseAddress!, byteCount: n)
            }
            i += n
        }
    }
    return bytes
}

/// Splits `data` the way a streaming caller would: it only ever shows the chunker a window of at
/// most `window` bytes starting at the current chunk, growing the window when told it needs more.
private func chunkLengths(_ data: [UInt8], _ chunker: Chunker, window: Int) -> [Int] {
    var lengths: [Int] = []
    data.withUnsafeBytes { all in
        var offset = 0
        var available = min(window, data.count)
        while offset < data.count {
            let end = min(offset + available, data.count)
            let view = UnsafeRawBufferPointer(rebasing: all[offset..<end])
            if let n = chunker.nextCut(view, isFinal: end == data.count) {
                precondition(n > 0 && n <= view.count)
                lengths.append(n)
                offset += n
                available = min(window, data.count - offset)
            } else {
                precondition(end < data.count, "nil for a final buffer")
                available += window
            }
        }
    }
    return lengths
}

private func chunks(_ data: [UInt8], lengths: [Int]) -> [Data] {
    var out: [Data] = []
    var offset = 0
    for n in lengths {
        out.append(Data(data[offset..<offset + n]))
        offset += n
    }
    return out
}

final class ChunkerTests: XCTestCase {
    let small = ChunkerParameters(minSize: 2 << 10, avgSize: 8 << 10, maxSize: 64 << 10)

    func testStandardParametersAndGearTable() {
        XCTAssertEqual(ChunkerParameters.standard,
                       ChunkerParameters(minSize: 256 * 1024, avgSize: 512 * 1024, maxSize: 8 * 1024 * 1024, normalization: 1))
        XCTAssertEqual(ChunkerParameters.legacyNormalization, 2)
        XCTAssertEqual(GearTable.standard.values.count, 256)
        XCTAssertEqual(Set(GearTable.standard.values).count, 256, "gear values should be distinct")
        var state: UInt64 = 0x436F_6666_6572_4744
        XCTAssertEqual(GearTable.standard.values[0], splitmix64(&state))
        XCTAssertEqual(GearTable(seed: 0x436F_6666_6572_4744).values, GearTable.standard.values)
    }

    func testDeterministicAndIndependentOfBufferingAndConcatenationRestoresInput() {
        let data = pseudoRandomBytes(count: 6 << 20, seed: 1)
        let chunker = Chunker(parameters: small, gear: .standard)
        let a = chunkLengths(data, chunker, window: small.maxSize)
        let b = chunkLengths(data, chunker, window: small.maxSize)
        let c = chunkLengths(data, chunker, window: 3000)          // grows in small steps
        let d = chunkLengths(data, chunker, window: data.count)    // whole input at once
        XCTAssertGreaterThan(a.count, 100)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a, c)
        XCTAssertEqual(a, d)
        XCTAssertEqual(Data(chunks(data, lengths: a).joined()), Data(data))
        XCTAssertEqual(a.reduce(0, +), data.count)
    }

    func testEveryChunkWithinBoundsExceptFinal() {
        for (params, size) in [(small, 4 << 20), (ChunkerParameters.standard, 40 << 20 + 12345)] {
            let data = pseudoRandomBytes(count: size, seed: 2)
            let lengths = chunkLengths(data, Chunker(parameters: params, gear: .standard), window: params.maxSize)
            XCTAssertEqual(lengths.reduce(0, +), data.count)
            for n in lengths.dropLast() {
                XCTAssertGreaterThanOrEqual(n, params.minSize)
                XCTAssertLessThanOrEqual(n, params.maxSize)
            }
            XCTAssertGreaterThan(lengths.last!, 0)
            XCTAssertLessThanOrEqual(lengths.last!, params.maxSize)
        }
    }

    func testAverageChunkSizeOnRandomDataStandard() {
        let data = pseudoRandomBytes(count: 64 << 20, seed: 3)
        let params = ChunkerParameters.standard
        let lengths = chunkLengths(data, Chunker(parameters: params, gear: .standard), window: params.maxSize)
        let average = Double(data.count) / Double(lengths.count)
        XCTAssertGreaterThan(average, 0.6 * Double(params.avgSize), "average \(average)")
        XCTAssertLessThan(average, 1.4 * Double(params.avgSize), "average \(average)")
    }

    func testSmallParametersWorkAndAverageIsNearTarget() {
        let data = pseudoRandomBytes(count: 8 << 20, seed: 4)
        let lengths = chunkLengths(data, Chunker(parameters: small, gear: .standard), window: small.maxSize)
        let average = Double(data.count) / Double(lengths.count)
        XCTAssertGreaterThan(average, 0.6 * Double(small.avgSize), "average \(average)")
        XCTAssertLessThan(average, 1.4 * Double(small.avgSize), "average \(average)")
        XCTAssertTrue(lengths.dropLast().allSatisfy { $0 >= small.minSize && $0 <= small.maxSize })
        // Normalization: hardly any chunk reaches maxSize on random data.
        XCTAssertLessThan(lengths.filter { $0 == small.maxSize }.count, lengths.count / 100 + 1)
    }

    func testBoundaryShiftResistance() {
        let original = pseudoRandomBytes(count: 32 << 20, seed: 5)
        var modified = original
        modified.insert(contentsOf: pseudoRandomBytes(count: 100, seed: 6), at: 1000)
        let params = ChunkerParameters.standard
        let chunker = Chunker(parameters: params, gear: .standard)
        let before = chunks(original, lengths: chunkLengths(original, chunker, window: params.maxSize))
        let after = Set(chunks(modified, lengths: chunkLengths(modified, chunker, window: params.maxSize)))
        let kept = before.filter { after.contains($0) }.count
        XCTAssertGreaterThan(before.count, 15)
        XCTAssertGreaterThanOrEqual(Double(kept), 0.8 * Double(before.count), "kept \(kept) of \(before.count)")
        XCTAssertFalse(after.contains(before[0]), "the chunk holding the insertion must change")
    }

    func testBoundaryShiftResistanceSmallParametersInsertInMiddle() {
        let original = pseudoRandomBytes(count: 4 << 20, seed: 7)
        var modified = original
        modified.insert(contentsOf: pseudoRandomBytes(count: 100, seed: 8), at: 2 << 20)
        modified.removeSubrange(100_000..<100_037)
        let chunker = Chunker(parameters: small, gear: .standard)
        let before = chunks(original, lengths: chunkLengths(original, chunker, window: small.maxSize))
        let after = Set(chunks(modified, lengths: chunkLengths(modified, chunker, window: small.maxSize)))
        let kept = before.filter { after.contains($0) }.count
        XCTAssertGreaterThanOrEqual(Double(kept), 0.95 * Double(before.count), "kept \(kept) of \(before.count)")
        XCTAssertLessThan(kept, before.count)
    }

    /// Stretches of one pattern repeated at shifted offsets (a VM image, a database after
    /// inserts): stored bytes = distinct chunks. Level 1 re-synchronises after a shift sooner
    /// than level 2, whose dense after-average mask keeps cutting out of phase (the reason new
    /// repositories use level 1; docs/FORMAT.md §5).
    func testRepeatedShiftedStretchesDeduplicateBetterAtLevel1() {
        let base = pseudoRandomBytes(count: 1 << 20, seed: 21)
        var data: [UInt8] = []
        var rng: UInt64 = 22
        for k in 0..<12 {
            data += pseudoRandomBytes(count: 1 + Int(splitmix64(&rng) % 3000), seed: 100 + UInt64(k))   // unique gap
            let start = Int(splitmix64(&rng) % UInt64(base.count))
            data += base[start...] + base[..<start]                                                     // rotated copy
        }
        func stored(_ level: Int) -> Int {
            let p = ChunkerParameters(minSize: 8 << 10, avgSize: 16 << 10, maxSize: 256 << 10, normalization: level)
            var seen = Set<Data>()
            var bytes = 0
            for c in chunks(data, lengths: chunkLengths(data, Chunker(parameters: p, gear: .standard), window: p.maxSize))
            where seen.insert(c).inserted { bytes += c.count }
            return bytes
        }
        let level1 = stored(1), level2 = stored(2)
        XCTAssertLessThan(level1, level2, "level 1 stored \(level1) bytes, level 2 \(level2)")
        XCTAssertLessThan(level1, 2 * base.count, "12 rotated copies of 1 MiB should store little more than 1 MiB: \(level1)")
    }

    func testNilWhenMoreBytesAreNeeded() {
        let params = ChunkerParameters.standard
        let chunker = Chunker(parameters: params, gear: .standard)
        let data = pseudoRandomBytes(count: 9 << 20, seed: 9)
        data.withUnsafeBytes { all in
            // Shorter than minSize: no decision possible yet; as final, it is the whole chunk.
            let short = UnsafeRawBufferPointer(rebasing: all[0..<300_000])
            XCTAssertNil(chunker.nextCut(short, isFinal: false))
            XCTAssertEqual(chunker.nextCut(short, isFinal: true), 300_000)
            // Empty input never yields a chunk.
            XCTAssertNil(chunker.nextCut(UnsafeRawBufferPointer(rebasing: all[0..<0]), isFinal: true))
            XCTAssertNil(chunker.nextCut(UnsafeRawBufferPointer(rebasing: all[0..<0]), isFinal: false))

            // With maxSize or more bytes there is always a decision, final or not.
            let full = UnsafeRawBufferPointer(rebasing: all[0..<params.maxSize])
            guard let cut = chunker.nextCut(full, isFinal: false) else { return XCTFail("no cut with maxSize bytes") }
            XCTAssertEqual(chunker.nextCut(all, isFinal: false), cut)
            XCTAssertEqual(chunker.nextCut(full, isFinal: true), cut)
            XCTAssertGreaterThan(cut, params.minSize)
            XCTAssertLessThan(cut, params.maxSize, "random data should cut before maxSize")

            // One byte short of the cut point, not final: more bytes are needed.
            XCTAssertNil(chunker.nextCut(UnsafeRawBufferPointer(rebasing: all[0..<cut - 1]), isFinal: false))
            XCTAssertEqual(chunker.nextCut(UnsafeRawBufferPointer(rebasing: all[0..<cut - 1]), isFinal: true), cut - 1)
            // A buffer that already contains the cut point answers at once (the cut depends only on the prefix).
            XCTAssertEqual(chunker.nextCut(UnsafeRawBufferPointer(rebasing: all[0..<cut]), isFinal: false), cut)
        }
    }

    func testMaxSizeCutOnDataWithoutCutPoints() {
        // Constant data makes the gear hash constant; with the standard table it never matches.
        let params = small
        let chunker = Chunker(parameters: params, gear: .standard)
        let zeros = [UInt8](repeating: 0, count: 3 * params.maxSize + 5)
        XCTAssertEqual(chunkLengths(zeros, chunker, window: params.maxSize),
                       [params.maxSize, params.maxSize, params.maxSize, 5])
        zeros.withUnsafeBytes { all in
            XCTAssertNil(chunker.nextCut(UnsafeRawBufferPointer(rebasing: all[0..<params.maxSize - 1]), isFinal: false))
            XCTAssertEqual(chunker.nextCut(UnsafeRawBufferPointer(rebasing: all[0..<params.maxSize]), isFinal: false),
                           params.maxSize)
        }
    }

    func testDifferentGearTablesGiveDifferentCuts() {
        let data = pseudoRandomBytes(count: 2 << 20, seed: 10)
        let a = chunkLengths(data, Chunker(parameters: small, gear: .standard), window: small.maxSize)
        let b = chunkLengths(data, Chunker(parameters: small, gear: GearTable(seed: 42)), window: small.maxSize)
        let reversed = GearTable(values: GearTable.standard.values.reversed())
        let c = chunkLengths(data, Chunker(parameters: small, gear: reversed), window: small.maxSize)
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(a, c)
        // Cut positions, not just lengths, should differ substantially.
        let cutsA = Set(a.reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1) })
        let cutsB = Set(b.reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1) })
        XCTAssertLessThan(cutsA.intersection(cutsB).count, a.count / 2)
    }

    /// Pins the chunk-boundary definition: changing the table, masks or hash changes
    /// every chunk and breaks deduplication against existing repositories.
    func testKnownAnswer() {
        let data = pseudoRandomBytes(count: 1 << 20, seed: 11)
        let lengths = chunkLengths(data, Chunker(parameters: small, gear: .standard), window: small.maxSize)
        XCTAssertEqual(Array(lengths.prefix(8)), [8393, 11104, 8702, 8816, 10209, 14301, 8256, 6384])
    }

    /// Textbook FastCDC loop, one byte at a time, for cross-checking the optimised scan.
    /// Masks: log2(avg) + n bits before avgSize, log2(avg) - n bits after (normalization level n).
    private func referenceCut(_ data: ArraySlice<UInt8>, _ c: Chunker, isFinal: Bool) -> Int? {
        let p = c.parameters
        let bits = p.avgSize.trailingZeroBitCount
        let n = p.normalization
        let maskS = referenceMask(bits: bits + n), maskL = referenceMask(bits: bits - n)
        let bytes = Array(data)
        if bytes.isEmpty { return nil }
        let limit = min(bytes.count, p.maxSize)
        var h: UInt64 = 0
        var i = p.minSize
        while i < limit {
            h = (h &<< 1) &+ c.gear.values[Int(bytes[i])]
            if h & (i < p.avgSize ? maskS : maskL) == 0 { return i + 1 }
            i += 1
        }
        if limit == p.maxSize { return p.maxSize }
        return isFinal ? bytes.count : nil
    }

    func testMatchesReferenceImplementation() {
        let odd = ChunkerParameters(minSize: 1001, avgSize: 2048, maxSize: 9999)
        let even = ChunkerParameters(minSize: 64, avgSize: 256, maxSize: 1000)
        // The reference masks themselves: right bit counts, spread over a 48-bit window, not the low bits.
        XCTAssertEqual(referenceMask(bits: 22).nonzeroBitCount, 22)
        XCTAssertEqual(referenceMask(bits: 18).nonzeroBitCount, 18)
        XCTAssertEqual(referenceMask(bits: 22) & 0x7FFF, 0)
        XCTAssertEqual(referenceMask(bits: 22) >> 62, 1)
        let data = pseudoRandomBytes(count: 300_000, seed: 12)
        let level1 = ChunkerParameters(minSize: 1001, avgSize: 2048, maxSize: 9999, normalization: 1)
        let level0 = ChunkerParameters(minSize: 64, avgSize: 256, maxSize: 1000, normalization: 0)
        let level3 = ChunkerParameters(minSize: 2 << 10, avgSize: 8 << 10, maxSize: 64 << 10, normalization: 3)
        for params in [odd, even, small, level1, level0, level3] {
            let chunker = Chunker(parameters: params, gear: GearTable(seed: 99))
            var offset = 0
            var compared = 0
            while offset < data.count {
                for length in [1, 7, params.minSize, params.minSize + 1, params.avgSize - 1, params.avgSize,
                               params.avgSize + 3, params.maxSize - 1, params.maxSize, params.maxSize + 10] {
                    let end = min(offset + length, data.count)
                    for isFinal in [false, true] {
                        let expected = referenceCut(data[offset..<end], chunker, isFinal: isFinal)
                        let actual = data.withUnsafeBytes {
                            chunker.nextCut(UnsafeRawBufferPointer(rebasing: $0[offset..<end]), isFinal: isFinal)
                        }
                        XCTAssertEqual(actual, expected, "params \(params) offset \(offset) length \(length)")
                        compared += 1
                    }
                }
                offset += referenceCut(data[offset...], chunker, isFinal: true)!
            }
            XCTAssertGreaterThan(compared, 200)
        }
    }
}
