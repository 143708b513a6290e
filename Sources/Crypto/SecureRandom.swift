/// Cryptographically secure random bytes from OpenSSL's DRBG.
public enum SecureRandom {
    /// Returns `count` random bytes. The corresponding C function is RAND_bytes; calls
    /// `fatalError` if the RNG fails (there is no safe way to continue without randomness).
    public static func bytes(count: Int) -> [UInt8] {
        precondition(count >= 0, "SecureRandom.bytes: negative count")
        return OpenSSLMemory.randomBytes(count: count)
    }
}
