internal import COpenSSL

/// AES through EVP_CIPHER: GCM seal/open, RFC 3394 key wrap, and single-block ECB (for GHASH keys).
/// Every call owns its EVP_CIPHER_CTX; the fetched EVP_CIPHERs are shared read-only.
enum OpenSSLCipher {
    private static let aesGCM = [fetch("AES-128-GCM"), fetch("AES-192-GCM"), fetch("AES-256-GCM")]
    private static let aesWrap = [fetch("AES-128-WRAP"), fetch("AES-192-WRAP"), fetch("AES-256-WRAP")]
    private static let aesECB = [fetch("AES-128-ECB"), fetch("AES-192-ECB"), fetch("AES-256-ECB")]

    /// Largest IV OpenSSL 3's GCM provider accepts (GCM_IV_MAX_SIZE).
    static let maximumGCMIVLength = 128

    private static func fetch(_ name: String) -> FetchedAlgorithm {
        FetchedAlgorithm(name) { EVP_CIPHER_fetch(nil, $0, nil) }
    }

    /// The AES variant for a 16/24/32-byte key, or nil for any other length.
    private static func variant(_ table: [FetchedAlgorithm], keyLength: Int) -> OpaquePointer? {
        switch keyLength {
        case 16: return table[0].pointer
        case 24: return table[1].pointer
        case 32: return table[2].pointer
        default: return nil
        }
    }

    static func isValidAESKeyLength(_ length: Int) -> Bool {
        length == 16 || length == 24 || length == 32
    }

    // MARK: GCM

    /// AES-GCM encryption appending ciphertext || `tagLength`-byte tag to `output` (left unchanged
    /// on failure). Key length must be 16/24/32, IV 1...128 bytes, tag 4...16 bytes.
    /// (EVP_EncryptInit_ex2, EVP_CTRL_AEAD_SET_IVLEN, EVP_EncryptUpdate, EVP_EncryptFinal_ex,
    /// EVP_CTRL_AEAD_GET_TAG)
    static func gcmSeal(key: [UInt8], iv: [UInt8], aad: UnsafeRawBufferPointer, plaintext: [UnsafeRawBufferPointer],
                        tagLength: Int, into output: inout [UInt8]) throws {
        let length = plaintext.reduce(0) { $0 + $1.count }
        let start = output.count
        let total = start + length + tagLength
        // One new buffer: the bytes already in `output`, then ciphertext || tag written straight
        // into uninitialised storage (no zero-fill pass); `output` is replaced only on success.
        output = try output.withUnsafeBytes { existing in
            try [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
                initialized = 0
                let base = buffer.baseAddress!
                if start > 0 { UnsafeMutableRawPointer(base).copyMemory(from: existing.baseAddress!, byteCount: start) }
                try gcmSeal(key: key, iv: iv, aad: aad, plaintext: plaintext, tagLength: tagLength, output: base + start)
                initialized = total
            }
        }
    }

    private static func gcmSeal(key: [UInt8], iv: [UInt8], aad: UnsafeRawBufferPointer,
                                plaintext: [UnsafeRawBufferPointer], tagLength: Int,
                                output out: UnsafeMutablePointer<UInt8>) throws {
        let context = try CipherContext()
        try context.initGCM(variant(aesGCM, keyLength: key.count)!, key: key, iv: iv, encrypt: true)
        try context.update(out: nil, input: aad, encrypt: true)
        var written = 0
        for part in plaintext {
            try context.update(out: out + written, input: part, encrypt: true)
            written += part.count
        }
        var finalLength: Int32 = 0
        try OpenSSL.check(EVP_EncryptFinal_ex(context.pointer, out + written, &finalLength),
                          "EVP_EncryptFinal_ex(GCM) failed")
        try OpenSSL.check(EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_AEAD_GET_TAG, Int32(tagLength),
                                              out + written),
                          "EVP_CTRL_AEAD_GET_TAG failed")
    }

    /// AES-GCM decryption of `sealed` = ciphertext || tag (`sealed.count >= tagLength`); throws
    /// `.authenticationFailed` on a tag mismatch, after cleansing the partial plaintext.
    /// (EVP_DecryptInit_ex2, EVP_DecryptUpdate, EVP_CTRL_AEAD_SET_TAG, EVP_DecryptFinal_ex)
    static func gcmOpen(key: [UInt8], iv: [UInt8], aad: UnsafeRawBufferPointer, sealed: UnsafeRawBufferPointer,
                        tagLength: Int) throws -> [UInt8] {
        precondition(sealed.count >= tagLength)
        let length = sealed.count - tagLength
        let ciphertext = UnsafeRawBufferPointer(rebasing: sealed[..<length])
        let tag = UnsafeRawBufferPointer(rebasing: sealed[length...])
        return try [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            initialized = 0
            do {
                let context = try CipherContext()
                try context.initGCM(variant(aesGCM, keyLength: key.count)!, key: key, iv: iv, encrypt: false)
                try context.update(out: nil, input: aad, encrypt: false)
                try context.update(out: buffer.baseAddress, input: ciphertext, encrypt: false)
                try OpenSSL.check(EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_AEAD_SET_TAG, Int32(tag.count),
                                                      UnsafeMutableRawPointer(mutating: OpenSSL.base(tag))),
                                  "EVP_CTRL_AEAD_SET_TAG failed")
                var finalLength: Int32 = 0
                var scratch: UInt8 = 0
                if EVP_DecryptFinal_ex(context.pointer, &scratch, &finalLength) != 1 {
                    OpenSSL.clearErrors()
                    throw CryptoError.authenticationFailed
                }
            } catch {
                // Never leave unauthenticated plaintext behind in the discarded buffer.
                OpenSSLMemory.cleanse(UnsafeMutableRawBufferPointer(buffer))
                throw error
            }
            initialized = length
        }
    }

    // MARK: Key wrap

    /// RFC 3394 wrap of `plaintext` (multiple of 8, >= 16 bytes) into `plaintext.count + 8` bytes.
    /// (EVP_CIPHER_CTX_set_flags(EVP_CIPHER_CTX_FLAG_WRAP_ALLOW), EVP_EncryptInit_ex2, EVP_EncryptUpdate)
    static func wrap(kek: [UInt8], plaintext: [UInt8]) throws -> [UInt8] {
        precondition(plaintext.count <= Int(Int32.max) - 8)
        let length = plaintext.count + 8
        let context = try CipherContext()
        EVP_CIPHER_CTX_set_flags(context.pointer, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW)
        try OpenSSL.check(EVP_EncryptInit_ex2(context.pointer, variant(aesWrap, keyLength: kek.count)!, kek, nil, nil),
                          "EVP_EncryptInit_ex2(AES-WRAP) failed")
        return try [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            initialized = 0
            let out = buffer.baseAddress!
            var written: Int32 = 0
            try OpenSSL.check(EVP_EncryptUpdate(context.pointer, out, &written, plaintext, Int32(plaintext.count)),
                              "EVP_EncryptUpdate(AES-WRAP) failed")
            var finalLength: Int32 = 0
            try OpenSSL.check(EVP_EncryptFinal_ex(context.pointer, out + Int(written), &finalLength),
                              "EVP_EncryptFinal_ex(AES-WRAP) failed")
            guard Int(written + finalLength) == length else {
                throw CryptoError.openssl("AES-WRAP produced \(written + finalLength) bytes, expected \(length)")
            }
            initialized = length
        }
    }

    /// RFC 3394 unwrap of `wrapped` (multiple of 8, >= 24 bytes). Any failure of the integrity
    /// check throws `.authenticationFailed` after cleansing the partial output.
    /// (EVP_CIPHER_CTX_set_flags(EVP_CIPHER_CTX_FLAG_WRAP_ALLOW), EVP_DecryptInit_ex2, EVP_DecryptUpdate)
    static func unwrap(kek: [UInt8], wrapped: [UInt8]) throws -> [UInt8] {
        precondition(wrapped.count >= 24 && wrapped.count <= Int(Int32.max))
        let context = try CipherContext()
        EVP_CIPHER_CTX_set_flags(context.pointer, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW)
        try OpenSSL.check(EVP_DecryptInit_ex2(context.pointer, variant(aesWrap, keyLength: kek.count)!, kek, nil, nil),
                          "EVP_DecryptInit_ex2(AES-WRAP) failed")
        // libcrypto assumes room for input + one block even though it writes input - 8 bytes.
        return try [UInt8](unsafeUninitializedCapacity: wrapped.count + 8) { buffer, initialized in
            initialized = 0
            let out = buffer.baseAddress!
            var written: Int32 = 0
            var finalLength: Int32 = 0
            guard EVP_DecryptUpdate(context.pointer, out, &written, wrapped, Int32(wrapped.count)) == 1,
                  written >= 0,
                  EVP_DecryptFinal_ex(context.pointer, out + Int(written), &finalLength) == 1,
                  Int(written + finalLength) == wrapped.count - 8 else {
                OpenSSLMemory.cleanse(UnsafeMutableRawBufferPointer(buffer))
                OpenSSL.clearErrors()
                throw CryptoError.authenticationFailed
            }
            initialized = wrapped.count - 8
        }
    }

    // MARK: Single block

    /// AES_K(block) for one 16-byte block (AES-ECB, no padding), e.g. the GHASH key H = AES_K(0^128).
    /// (EVP_EncryptInit_ex2, EVP_CIPHER_CTX_set_padding, EVP_EncryptUpdate)
    static func encryptBlock(key: [UInt8], block: [UInt8]) throws -> [UInt8] {
        precondition(block.count == 16)
        let context = try CipherContext()
        try OpenSSL.check(EVP_EncryptInit_ex2(context.pointer, variant(aesECB, keyLength: key.count)!, key, nil, nil),
                          "EVP_EncryptInit_ex2(AES-ECB) failed")
        EVP_CIPHER_CTX_set_padding(context.pointer, 0)
        var output = [UInt8](repeating: 0, count: 16)
        var written: Int32 = 0
        try OpenSSL.check(EVP_EncryptUpdate(context.pointer, &output, &written, block, 16),
                          "EVP_EncryptUpdate(AES-ECB) failed")
        guard written == 16 else { throw CryptoError.openssl("AES-ECB produced \(written) bytes") }
        return output
    }
}

/// An owned EVP_CIPHER_CTX (EVP_CIPHER_CTX_new / EVP_CIPHER_CTX_free).
private struct CipherContext: ~Copyable {
    let pointer: OpaquePointer

    init() throws {
        guard let pointer = EVP_CIPHER_CTX_new() else { throw OpenSSL.error("EVP_CIPHER_CTX_new failed") }
        self.pointer = pointer
    }

    /// Selects the GCM cipher, sets a non-default IV length, then installs key and IV.
    func initGCM(_ cipher: OpaquePointer, key: [UInt8], iv: [UInt8], encrypt: Bool) throws {
        let initialise = encrypt ? EVP_EncryptInit_ex2 : EVP_DecryptInit_ex2
        try OpenSSL.check(initialise(pointer, cipher, nil, nil, nil), "EVP_CipherInit_ex2(GCM) failed")
        if iv.count != 12 {
            try OpenSSL.check(EVP_CIPHER_CTX_ctrl(pointer, EVP_CTRL_AEAD_SET_IVLEN, Int32(iv.count), nil),
                              "EVP_CTRL_AEAD_SET_IVLEN(\(iv.count)) failed")
        }
        try OpenSSL.check(initialise(pointer, nil, key, iv, nil),
                          "EVP_CipherInit_ex2(GCM key/IV) failed")
    }

    /// EVP_EncryptUpdate / EVP_DecryptUpdate over `input` in chunks that fit an `int`; `out == nil`
    /// feeds additional authenticated data. Stream mode: output length always equals input length.
    func update(out: UnsafeMutablePointer<UInt8>?, input: UnsafeRawBufferPointer, encrypt: Bool) throws {
        let step = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate
        var offset = 0
        while offset < input.count {
            let chunk = min(input.count - offset, 1 << 30)
            var written: Int32 = 0
            try OpenSSL.check(step(pointer, out.map { $0 + offset }, &written,
                                   OpenSSL.base(input) + offset, Int32(chunk)), "EVP_CipherUpdate(GCM) failed")
            guard out == nil || Int(written) == chunk else {
                throw CryptoError.openssl("GCM update produced \(written) of \(chunk) bytes")
            }
            offset += chunk
        }
    }

    deinit {
        EVP_CIPHER_CTX_free(pointer)
    }
}
