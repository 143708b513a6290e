/// AES-GCM authenticated encryption (NIST SP 800-38D). A 16/24/32-byte key selects
/// AES-128/192/256-GCM; the nonce may be any length >= 1 (12 bytes is the fast, recommended
/// size); the tag is 4...16 bytes. Every call uses its own EVP_CIPHER_CTX, so calls are
/// thread-safe.
public enum AESGCM {
    /// Encrypts `plaintext` and appends ciphertext || tag to `output` (nothing is appended if it
    /// throws). Throws `.invalidParameter` for a bad key size, empty nonce or tag length outside 4...16.
    /// The corresponding C functions are EVP_EncryptInit_ex2, EVP_EncryptUpdate, EVP_EncryptFinal_ex
    /// and EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_GET_TAG).
    public static func seal(key: [UInt8], nonce: [UInt8], plaintext: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
                            tagLength: Int = 16, into output: inout [UInt8]) throws {
        try seal(key: key, nonce: nonce, plaintextParts: [plaintext], aad: aad, tagLength: tagLength, into: &output)
    }

    /// Like `seal(key:nonce:plaintext:aad:tagLength:into:)` for a plaintext given as consecutive
    /// parts (encrypted as their concatenation, without joining them first).
    public static func seal(key: [UInt8], nonce: [UInt8], plaintextParts: [UnsafeRawBufferPointer],
                            aad: UnsafeRawBufferPointer, tagLength: Int = 16, into output: inout [UInt8]) throws {
        try validate(key: key, nonce: nonce, tagLength: tagLength)
        try OpenSSLCipher.gcmSeal(key: key, iv: effectiveNonce(key: key, nonce: nonce), aad: aad,
                                  plaintext: plaintextParts, tagLength: tagLength, into: &output)
    }

    /// GMAC (NIST SP 800-38D: GCM over an empty plaintext): the tag of `data`, authenticated as
    /// additional data and not encrypted. Like GCM, a nonce must never tag two different inputs
    /// under one key. Same C functions as `seal`.
    public static func gmac(key: [UInt8], nonce: [UInt8], data: UnsafeRawBufferPointer, tagLength: Int = 16) throws -> [UInt8] {
        var output: [UInt8] = []
        try seal(key: key, nonce: nonce, plaintextParts: [], aad: data, tagLength: tagLength, into: &output)
        return output
    }

    /// Returns ciphertext || tag. The corresponding C functions are EVP_EncryptInit_ex2,
    /// EVP_EncryptUpdate, EVP_EncryptFinal_ex and EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_GET_TAG).
    public static func seal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8],
                            tagLength: Int = 16) throws -> [UInt8] {
        var output: [UInt8] = []
        try plaintext.withUnsafeBytes { plaintext in
            try aad.withUnsafeBytes { aad in
                try seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad, tagLength: tagLength, into: &output)
            }
        }
        return output
    }

    /// Decrypts `sealed` (ciphertext || tag) and returns the plaintext. Throws
    /// `.authenticationFailed` if the tag does not verify or `sealed` is shorter than a tag, and
    /// `.invalidParameter` for a bad key size, empty nonce or tag length outside 4...16.
    /// The corresponding C functions are EVP_DecryptInit_ex2, EVP_DecryptUpdate,
    /// EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_SET_TAG) and EVP_DecryptFinal_ex.
    public static func open(key: [UInt8], nonce: [UInt8], sealed: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
                            tagLength: Int = 16) throws -> [UInt8] {
        try validate(key: key, nonce: nonce, tagLength: tagLength)
        guard sealed.count >= tagLength else { throw CryptoError.authenticationFailed }
        return try OpenSSLCipher.gcmOpen(key: key, iv: effectiveNonce(key: key, nonce: nonce), aad: aad, sealed: sealed,
                                         tagLength: tagLength)
    }

    /// Array convenience for `open(key:nonce:sealed:aad:tagLength:)`. The corresponding C
    /// functions are EVP_DecryptInit_ex2, EVP_DecryptUpdate and EVP_DecryptFinal_ex.
    public static func open(key: [UInt8], nonce: [UInt8], sealed: [UInt8], aad: [UInt8],
                            tagLength: Int = 16) throws -> [UInt8] {
        try sealed.withUnsafeBytes { sealed in
            try aad.withUnsafeBytes { aad in
                try open(key: key, nonce: nonce, sealed: sealed, aad: aad, tagLength: tagLength)
            }
        }
    }

    private static func validate(key: [UInt8], nonce: [UInt8], tagLength: Int) throws {
        guard OpenSSLCipher.isValidAESKeyLength(key.count) else {
            throw CryptoError.invalidParameter("AES-GCM key must be 16, 24 or 32 bytes, got \(key.count)")
        }
        guard !nonce.isEmpty else { throw CryptoError.invalidParameter("AES-GCM nonce must not be empty") }
        guard (4...16).contains(tagLength) else {
            throw CryptoError.invalidParameter("AES-GCM tag length must be 4...16 bytes, got \(tagLength)")
        }
    }

    /// The nonce handed to OpenSSL: itself, or an equivalent 16-byte one if it exceeds OpenSSL's limit.
    private static func effectiveNonce(key: [UInt8], nonce: [UInt8]) throws -> [UInt8] {
        guard nonce.count > OpenSSLCipher.maximumGCMIVLength else { return nonce }
        return try GCMLongNonce.equivalentNonce(for: nonce, key: key)
    }
}
