/// Holds key material in its own allocation, best-effort `mlock`ed so it is not swapped out, and
/// zeroes it in `deinit`. The corresponding C function for zeroing is OPENSSL_cleanse; random
/// contents come from RAND_bytes.
///
/// Immutable after construction, hence safe to share between threads.
public final class SecretBytes: @unchecked Sendable {
    private let storage: LockedBuffer

    /// Copies `bytes` into locked storage. The caller should `secureZero` its own copy if it can.
    public init(_ bytes: [UInt8]) {
        storage = LockedBuffer(copying: bytes)
    }

    private init(randomCount count: Int) {
        storage = LockedBuffer(randomCount: count)
    }

    /// `count` bytes from the CSPRNG, written straight into locked storage.
    /// The corresponding C function is RAND_bytes; traps if the RNG fails.
    public static func random(count: Int) -> SecretBytes {
        precondition(count >= 0, "SecretBytes.random: negative count")
        return SecretBytes(randomCount: count)
    }

    /// Number of secret bytes.
    public var count: Int { storage.count }

    /// Read-only access to the secret; do not let the pointer escape `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes(body)
    }

    /// A plain (unlocked, not auto-zeroed) copy; `secureZero` it when done.
    public func copyBytes() -> [UInt8] {
        storage.withUnsafeBytes { [UInt8]($0) }
    }
}
