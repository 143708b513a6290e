/// Streaming SHA-256. Not thread-safe: use one hasher per thread.
public final class SHA256Hasher {
    private let context = OpenSSLDigestContext()

    /// Starts a new digest. The corresponding C function is EVP_DigestInit_ex2.
    public init() {}

    /// Absorbs `data`. The corresponding C function is EVP_DigestUpdate.
    public func update(_ data: UnsafeRawBufferPointer) {
        context.update(data)
    }

    /// Absorbs `data`. The corresponding C function is EVP_DigestUpdate.
    public func update(_ data: [UInt8]) {
        context.update(data)
    }

    /// Returns the 32-byte digest of everything absorbed, then resets the hasher to the empty
    /// state so it can be reused. The corresponding C function is EVP_DigestFinal_ex.
    public func finalize() -> [UInt8] {
        let digest = context.finalize()
        context.reset()
        return digest
    }
}
