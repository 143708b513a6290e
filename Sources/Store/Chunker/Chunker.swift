/// Size limits of content-defined chunks, in bytes.
public struct ChunkerParameters: Sendable, Equatable {
    /// No chunk is shorter than this, except the final chunk of a stream.
    public var minSize: Int
    /// Target ("normal") chunk size; must be a power of two.
    public var avgSize: Int
    /// No chunk is longer than this.
    public var maxSize: Int
    /// FastCDC normalization level `n`: the mask has `log2(avg) + n` bits before `avgSize` and
    /// `log2(avg) - n` bits from there on (0 = one mask, as in classic CDC).
    public var normalization: Int

    /// Creates parameters; traps unless `0 <= minSize < avgSize < maxSize`, `avgSize` is a
    /// power of two between 16 B and 16 TiB and `normalization` is 0...3.
    public init(minSize: Int, avgSize: Int, maxSize: Int, normalization: Int = ChunkerParameters.legacyNormalization) {
        ChunkerParameters.validate(minSize: minSize, avgSize: avgSize, maxSize: maxSize, normalization: normalization)
        self.minSize = minSize
        self.avgSize = avgSize
        self.maxSize = maxSize
        self.normalization = normalization
    }

    /// For new repositories: 256 KiB / 512 KiB / 8 MiB, normalization level 1 (see docs/FORMAT.md §5).
    public static let standard = ChunkerParameters(minSize: 256 << 10, avgSize: 512 << 10, maxSize: 8 << 20, normalization: 1)

    /// Repositories whose config predates `chunker_normalization` use level 2.
    public static let legacyNormalization = 2

    /// The normalization levels a chunker accepts.
    public static let normalizationLevels = 0...3

    static func validate(minSize: Int, avgSize: Int, maxSize: Int, normalization: Int) {
        precondition(normalizationLevels.contains(normalization),
                     "ChunkerParameters.normalization must be in \(normalizationLevels) (got \(normalization))")
        precondition(minSize >= 0 && minSize < avgSize && avgSize < maxSize,
                     "ChunkerParameters need 0 <= min < avg < max (got \(minSize)/\(avgSize)/\(maxSize))")
        precondition(avgSize > 0 && avgSize & (avgSize - 1) == 0,
                     "ChunkerParameters.avgSize must be a power of two (got \(avgSize))")
        precondition(avgSize >= 1 << 4 && avgSize <= 1 << 44,
                     "ChunkerParameters.avgSize must be between 16 B and 16 TiB (got \(avgSize))")
    }
}

/// FastCDC content-defined chunker (Xia et al., USENIX ATC 2016) with gear hashing,
/// cut-point skipping and normalized chunking at level `n` (``ChunkerParameters/normalization``).
///
/// Hashing starts `minSize` bytes into the chunk with `h = (h << 1) &+ gear[byte]`; a cut is
/// made after the first byte at which `h & mask == 0`, using a mask with `log2(avg) + n` bits
/// before `avgSize` and one with `log2(avg) - n` bits from `avgSize` on, and at `maxSize` at the
/// latest. The mask bits are spread evenly over bits 15...62 of the hash (as in the paper's
/// padded masks), so every cut decision depends on a ~48-byte window rather than on the last
/// few bytes only. Bit 63 stays clear so that a mask shifted left by one loses no bit, which
/// lets the hot loop hash two bytes per step (the "rolling two bytes" optimisation of FastCDC
/// 2020) with identical results.
///
/// The chunker holds no stream state: the caller keeps the buffer and calls ``nextCut(_:isFinal:)``
/// on the bytes that start at the current chunk.
public struct Chunker: Sendable {
    /// The size limits this chunker was created with.
    public let parameters: ChunkerParameters
    /// The gear table this chunker was created with.
    public let gear: GearTable
    /// Stricter mask (more bits) used before `avgSize`.
    let maskS: UInt64
    /// Looser mask (fewer bits) used from `avgSize` on.
    let maskL: UInt64
    /// `gear.values[b] << 1`, for hashing two bytes per step.
    let gearShifted: [UInt64]

    /// Creates a chunker. Cut points are a pure function of the data, `parameters` and `gear`.
    public init(parameters: ChunkerParameters, gear: GearTable) {
        ChunkerParameters.validate(minSize: parameters.minSize, avgSize: parameters.avgSize,
                                   maxSize: parameters.maxSize, normalization: parameters.normalization)
        self.parameters = parameters
        self.gear = gear
        let bits = parameters.avgSize.trailingZeroBitCount
        self.maskS = Chunker.spreadMask(bits: bits + parameters.normalization)
        self.maskL = Chunker.spreadMask(bits: bits - parameters.normalization)
        self.gearShifted = gear.values.map { $0 &<< 1 }
    }

    /// A mask with `bits` one-bits spread evenly over bits 15...62, bit 62 always set.
    static func spreadMask(bits: Int) -> UInt64 {
        precondition(bits >= 1 && bits <= 48)
        var mask: UInt64 = 0
        for k in 0..<bits {
            mask |= 1 << UInt64(62 - (k * 48) / bits)
        }
        precondition(mask.nonzeroBitCount == bits)
        return mask
    }

    /// Length of the chunk that starts at `data[0]`.
    ///
    /// - Returns: the chunk length, always in `1...maxSize`, and at least `minSize` unless the
    ///   chunk is the final one (`isFinal` and fewer than `minSize` bytes left). Returns `nil` when
    ///   the decision needs more bytes: `data.count < maxSize`, `isFinal` is false and no cut point
    ///   occurs within `data`. A cut point found inside a shorter buffer is returned at once, since
    ///   it depends only on the bytes before it. Returns `nil` for empty `data`.
    ///
    /// Pure function of (`data`, parameters, gear); the caller keeps the buffer. Only the first
    /// `maxSize` bytes are read.
    public func nextCut(_ data: UnsafeRawBufferPointer, isFinal: Bool) -> Int? {
        let count = data.count
        guard count > 0, let base = data.baseAddress else { return nil }
        let minSize = parameters.minSize
        let maxSize = parameters.maxSize
        let limit = count < maxSize ? count : maxSize
        if limit > minSize {
            let normal = parameters.avgSize < limit ? parameters.avgSize : limit
            let cut: Int? = gear.values.withUnsafeBufferPointer { table -> Int? in
                gearShifted.withUnsafeBufferPointer { shifted -> Int? in
                    Chunker.scan(base, from: minSize, normal: normal, limit: limit,
                                 gear: table.baseAddress.unsafelyUnwrapped,
                                 gearShifted: shifted.baseAddress.unsafelyUnwrapped,
                                 maskS: maskS, maskL: maskL)
                }
            }
            if let cut { return cut }
        }
        if limit == maxSize { return maxSize }
        return isFinal ? count : nil
    }

    /// The hot loop: gear-hashes `bytes[start..<limit]` (hash reset to 0 at `start`), testing
    /// `maskS` before `normal` and `maskL` from `normal` on; returns the length up to and including
    /// the first byte whose hash has no mask bit set, or nil. Two bytes per step: `h << 2 + gs[b0]`
    /// equals `((h << 1) + g[b0]) << 1`, whose mask test is the same with the mask shifted by one.
    @inline(__always)
    static func scan(_ bytes: UnsafeRawPointer, from start: Int, normal: Int, limit: Int,
                     gear g: UnsafePointer<UInt64>, gearShifted gs: UnsafePointer<UInt64>,
                     maskS: UInt64, maskL: UInt64) -> Int? {
        var h: UInt64 = 0
        var i = start
        var mask = maskS
        var end = normal
        while true {
            let maskShifted = mask &<< 1
            while i &+ 2 <= end {
                h = (h &<< 2) &+ gs[Int(bytes.load(fromByteOffset: i, as: UInt8.self))]
                if h & maskShifted == 0 { return i &+ 1 }
                h = h &+ g[Int(bytes.load(fromByteOffset: i &+ 1, as: UInt8.self))]
                if h & mask == 0 { return i &+ 2 }
                i &+= 2
            }
            if i < end {
                h = (h &<< 1) &+ g[Int(bytes.load(fromByteOffset: i, as: UInt8.self))]
                if h & mask == 0 { return i &+ 1 }
                i &+= 1
            }
            if end == limit { return nil }
            mask = maskL
            end = limit
        }
    }
}
