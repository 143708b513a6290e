/// An element of GF(2^128) in GCM's bit-reflected convention (NIST SP 800-38D §6.3): bit 0 is the
/// most significant bit of byte 0. Arithmetic is branch-free in the operand values.
struct GF128 {
    var high: UInt64
    var low: UInt64

    static let zero = GF128(high: 0, low: 0)
    /// The multiplicative identity (x^0 is the leftmost bit).
    static let one = GF128(high: 1 << 63, low: 0)

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Reads a 16-byte big-endian block; bytes past the end of `bytes` count as zero.
    init<C: Collection>(block bytes: C) where C.Element == UInt8 {
        var high: UInt64 = 0, low: UInt64 = 0
        var index = 0
        for byte in bytes.prefix(16) {
            if index < 8 { high |= UInt64(byte) << (56 - 8 * index) } else { low |= UInt64(byte) << (120 - 8 * index) }
            index += 1
        }
        self.init(high: high, low: low)
    }

    /// The 16-byte big-endian encoding.
    var bytes: [UInt8] {
        (0..<16).map { index in
            index < 8 ? UInt8(truncatingIfNeeded: high >> (56 - 8 * index))
                      : UInt8(truncatingIfNeeded: low >> (120 - 8 * index))
        }
    }

    static func ^ (a: GF128, b: GF128) -> GF128 {
        GF128(high: a.high ^ b.high, low: a.low ^ b.low)
    }

    /// SP 800-38D Algorithm 1 (shift-and-add with reduction by R = 11100001 || 0^120), masked.
    static func * (x: GF128, y: GF128) -> GF128 {
        var zHigh: UInt64 = 0, zLow: UInt64 = 0
        var vHigh = y.high, vLow = y.low
        for i in 0..<128 {
            let bit = i < 64 ? (x.high >> UInt64(63 - i)) & 1 : (x.low >> UInt64(127 - i)) & 1
            let take = 0 &- bit
            zHigh ^= vHigh & take
            zLow ^= vLow & take
            let reduce = 0 &- (vLow & 1)
            vLow = (vLow >> 1) | (vHigh << 63)
            vHigh = (vHigh >> 1) ^ (0xE100_0000_0000_0000 & reduce)
        }
        return GF128(high: zHigh, low: zLow)
    }

    /// x^(2^128 - 2), the inverse of a non-zero element (Fermat), by a fixed square-and-multiply chain.
    var inverse: GF128 {
        var result = GF128.one
        for i in 0..<128 {
            result = result * result
            if i < 127 { result = result * self }
        }
        return result
    }

    var isZero: Bool { (high | low) == 0 }
}
