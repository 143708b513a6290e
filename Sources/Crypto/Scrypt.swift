/// scrypt password-based key derivation (RFC 7914).
public enum Scrypt {
    /// Derives `length` bytes from `password` and `salt` with cost `n` (a power of two > 1),
    /// block size `r` and parallelism `p`. The memory limit handed to OpenSSL is computed from the
    /// parameters (128·r·(n + p + 2) bytes plus slack), so any affordable cost works.
    /// Throws `.invalidParameter` for malformed parameters, `.openssl` if libcrypto refuses them
    /// (e.g. out of memory). The corresponding C function is EVP_PBE_scrypt.
    public static func deriveKey(password: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64,
                                 length: Int) throws -> [UInt8] {
        guard n > 1, n & (n - 1) == 0 else {
            throw CryptoError.invalidParameter("scrypt N must be a power of two greater than 1, got \(n)")
        }
        guard r >= 1, p >= 1 else { throw CryptoError.invalidParameter("scrypt r and p must be >= 1") }
        guard length >= 1 else { throw CryptoError.invalidParameter("scrypt output length must be >= 1") }
        let maxMemory = try memoryBound(n: n, r: r, p: p)
        return try OpenSSLKDF.scrypt(password: password, salt: salt, n: n, r: r, p: p, maxMemory: maxMemory,
                                     length: length)
    }

    /// 128·r·(n + 2) for V plus 128·r·p for B (OpenSSL's own accounting) plus 1 MiB slack.
    private static func memoryBound(n: UInt64, r: UInt64, p: UInt64) throws -> UInt64 {
        let blockBytes = r.multipliedReportingOverflow(by: 128)
        let elements = n.addingReportingOverflow(p &+ 2)
        guard !blockBytes.overflow, !elements.overflow, p < UInt64.max - 2 else {
            throw CryptoError.invalidParameter("scrypt parameters overflow the memory computation")
        }
        let total = blockBytes.partialValue.multipliedReportingOverflow(by: elements.partialValue)
        let withSlack = total.partialValue.addingReportingOverflow(1 << 20)
        guard !total.overflow, !withSlack.overflow else {
            throw CryptoError.invalidParameter("scrypt parameters overflow the memory computation")
        }
        return withSlack.partialValue
    }
}
