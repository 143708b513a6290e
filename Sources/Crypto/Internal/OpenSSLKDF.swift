internal import COpenSSL

/// Key-derivation functions: HKDF through EVP_KDF, scrypt through EVP_PBE_scrypt. Outputs are
/// cleansed before a failure is reported.
enum OpenSSLKDF {
    static let hkdf = FetchedAlgorithm("HKDF") { EVP_KDF_fetch(nil, $0, nil) }

    /// HKDF-SHA256 extract-and-expand of `length` bytes (EVP_KDF_CTX_new + EVP_KDF_derive).
    static func hkdfSHA256(key: [UInt8], salt: [UInt8], info: [UInt8], length: Int) throws -> [UInt8] {
        guard let context = EVP_KDF_CTX_new(hkdf.pointer) else { throw OpenSSL.error("EVP_KDF_CTX_new(HKDF) failed") }
        defer { EVP_KDF_CTX_free(context) }
        return try derive(length: length) { output in
            key.withUnsafeBytes { key in
                salt.withUnsafeBytes { salt in
                    info.withUnsafeBytes { info in
                        var params = [
                            OpenSSL.utf8Param("digest", "SHA256"),
                            OpenSSL.octetParam("key", key),
                            OpenSSL.octetParam("salt", salt),
                            OpenSSL.octetParam("info", info),
                            OpenSSL.endParam(),
                        ]
                        return EVP_KDF_derive(context, output, length, &params)
                    }
                }
            }
        } failure: { "EVP_KDF_derive(HKDF-SHA256) failed" }
    }

    /// scrypt (RFC 7914) of `length` bytes (EVP_PBE_scrypt); `maxMemory` bounds libcrypto's allocation.
    static func scrypt(password: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, maxMemory: UInt64,
                       length: Int) throws -> [UInt8] {
        try derive(length: length) { output in
            password.withUnsafeBytes { password in
                salt.withUnsafeBytes { salt in
                    let passwordPointer = UnsafeRawPointer(OpenSSL.base(password)).assumingMemoryBound(to: CChar.self)
                    return EVP_PBE_scrypt(passwordPointer, password.count, OpenSSL.base(salt), salt.count,
                                          n, r, p, maxMemory, output, length)
                }
            }
        } failure: { "EVP_PBE_scrypt failed" }
    }

    /// Runs `body` on a `length`-byte output buffer; a status other than 1 cleanses it and throws.
    private static func derive(length: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int32,
                               failure: () -> String) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: length)
        let status = output.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        guard status == 1 else {
            OpenSSLMemory.cleanse(&output)
            throw OpenSSL.error(failure())
        }
        return output
    }
}
