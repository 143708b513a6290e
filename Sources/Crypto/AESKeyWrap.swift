/// AES key wrap without padding (RFC 3394 / NIST SP 800-38F "KW") with the default IV
/// A6A6A6A6A6A6A6A6. A 16/24/32-byte KEK selects AES-128/192/256.
public enum AESKeyWrap {
    /// Wraps `plaintext` (a multiple of 8 bytes, at least 16) into `plaintext.count + 8` bytes.
    /// Throws `.invalidParameter` for a bad KEK or plaintext size. The corresponding C functions are
    /// EVP_EncryptInit_ex2 and EVP_EncryptUpdate with EVP_aes_{128,192,256}_wrap and
    /// EVP_CIPHER_CTX_FLAG_WRAP_ALLOW.
    public static func wrap(kek: [UInt8], plaintext: [UInt8]) throws -> [UInt8] {
        try validate(kek: kek)
        guard plaintext.count >= 16, plaintext.count % 8 == 0, plaintext.count <= Int(Int32.max) - 8 else {
            throw CryptoError.invalidParameter(
                "AES key wrap input must be a multiple of 8 bytes and at least 16, got \(plaintext.count)")
        }
        return try OpenSSLCipher.wrap(kek: kek, plaintext: plaintext)
    }

    /// Unwraps and verifies `wrapped`. Throws `.authenticationFailed` if the integrity check fails
    /// or `wrapped` cannot be a wrapped key (not a multiple of 8 bytes, or shorter than 24), and
    /// `.invalidParameter` for a bad KEK size. The corresponding C functions are EVP_DecryptInit_ex2
    /// and EVP_DecryptUpdate with EVP_aes_{128,192,256}_wrap and EVP_CIPHER_CTX_FLAG_WRAP_ALLOW.
    public static func unwrap(kek: [UInt8], wrapped: [UInt8]) throws -> [UInt8] {
        try validate(kek: kek)
        guard wrapped.count >= 24, wrapped.count % 8 == 0, wrapped.count <= Int(Int32.max) else {
            throw CryptoError.authenticationFailed
        }
        return try OpenSSLCipher.unwrap(kek: kek, wrapped: wrapped)
    }

    private static func validate(kek: [UInt8]) throws {
        guard OpenSSLCipher.isValidAESKeyLength(kek.count) else {
            throw CryptoError.invalidParameter("AES key wrap KEK must be 16, 24 or 32 bytes, got \(kek.count)")
        }
    }
}
