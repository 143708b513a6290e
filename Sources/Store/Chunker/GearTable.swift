/// The 256-entry random table of the gear rolling hash used by ``Chunker``.
///
/// The table is part of the chunk-boundary definition: two chunkers only produce the same
/// chunks (and therefore deduplicate against each other) when they use the same table.
/// A repository may derive a secret table from its key so that chunk lengths do not leak
/// information about plaintext; ``standard`` is a fixed public table for tests and docs.
public struct GearTable: Sendable {
    /// The 256 gear values, indexed by byte value.
    public let values: [UInt64]

    /// Creates a table from exactly 256 values (traps otherwise).
    public init(values: [UInt64]) {
        precondition(values.count == 256, "GearTable needs exactly 256 values, got \(values.count)")
        self.values = values
    }

    /// Creates a table from 256 consecutive outputs of splitmix64 started at `seed`.
    public init(seed: UInt64) {
        var state = seed
        var values = [UInt64]()
        values.reserveCapacity(256)
        for _ in 0..<256 {
            values.append(GearTable.splitmix64(&state))
        }
        self.init(values: values)
    }

    /// Length of the key material `init(key:)` takes: 256 little-endian 64-bit values.
    public static let keyLength = 256 * 8

    /// A table from `keyLength` bytes of key material (a repository derives them from its
    /// master secret with HKDF): value i is bytes 8i..<8i+8, little-endian.
    public init(key: UnsafeRawBufferPointer) {
        precondition(key.count == GearTable.keyLength, "GearTable key must be \(GearTable.keyLength) bytes")
        var values = [UInt64](repeating: 0, count: 256)
        for i in 0..<256 {
            var v: UInt64 = 0
            for j in 0..<8 { v |= UInt64(key[i * 8 + j]) << (8 * UInt64(j)) }
            values[i] = v
        }
        self.init(values: values)
    }

    /// Fixed public table: splitmix64 seeded with `0x436F_6666_6572_4744` ("CofferGD").
    /// Never change it — doing so changes every chunk boundary made with it.
    public static let standard = GearTable(seed: 0x436F_6666_6572_4744)

    /// One step of splitmix64 (Steele, Lea & Flood 2014).
    static func splitmix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
