/// One-shot SHA-256 (FIPS 180-4).
public enum SHA256 {
    /// The 32-byte SHA-256 digest of `data`. The corresponding C function is EVP_Digest.
    public static func hash(_ data: [UInt8]) -> [UInt8] {
        OpenSSLDigest.sha256(data)
    }

    /// The 32-byte SHA-256 digest of `data`. The corresponding C function is EVP_Digest.
    public static func hash(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        OpenSSLDigest.sha256(data)
    }
}
