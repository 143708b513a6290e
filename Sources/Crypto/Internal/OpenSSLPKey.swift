internal import COpenSSL

/// X25519 through EVP_PKEY (raw 32-byte keys, RFC 7748).
enum OpenSSLX25519 {
    static let keyLength = 32

    /// The public key for a raw 32-byte private key (EVP_PKEY_new_raw_private_key_ex +
    /// EVP_PKEY_get_raw_public_key).
    static func publicKey(privateKey: [UInt8]) throws -> [UInt8] {
        let key = try PKey(privateKey: privateKey)
        var output = [UInt8](repeating: 0, count: keyLength)
        var length = keyLength
        try OpenSSL.check(EVP_PKEY_get_raw_public_key(key.pointer, &output, &length),
                          "EVP_PKEY_get_raw_public_key failed")
        guard length == keyLength else { throw CryptoError.openssl("X25519 public key has \(length) bytes") }
        return output
    }

    /// X25519(privateKey, publicKey) for raw 32-byte keys (EVP_PKEY_derive_init,
    /// EVP_PKEY_derive_set_peer, EVP_PKEY_derive). libcrypto refuses an all-zero result (low-order
    /// peer point); that refusal is reported as `.invalidParameter`.
    static func sharedSecret(privateKey: [UInt8], publicKey: [UInt8]) throws -> [UInt8] {
        let key = try PKey(privateKey: privateKey)
        let peer = try PKey(publicKey: publicKey)
        guard let context = EVP_PKEY_CTX_new_from_pkey(nil, key.pointer, nil) else {
            throw OpenSSL.error("EVP_PKEY_CTX_new_from_pkey(X25519) failed")
        }
        defer { EVP_PKEY_CTX_free(context) }
        try OpenSSL.check(EVP_PKEY_derive_init(context), "EVP_PKEY_derive_init(X25519) failed")
        try OpenSSL.check(EVP_PKEY_derive_set_peer(context, peer.pointer), "EVP_PKEY_derive_set_peer(X25519) failed")
        var output = [UInt8](repeating: 0, count: keyLength)
        var length = keyLength
        guard EVP_PKEY_derive(context, &output, &length) == 1 else {
            OpenSSLMemory.cleanse(&output)
            throw CryptoError.invalidParameter(OpenSSL.drainErrors(
                context: "X25519 rejected the public key (all-zero shared secret / low-order point)"))
        }
        guard length == keyLength else { throw CryptoError.openssl("X25519 shared secret has \(length) bytes") }
        return output
    }
}

/// An owned EVP_PKEY of type X25519 (EVP_PKEY_free on deinit).
private struct PKey: ~Copyable {
    let pointer: OpaquePointer

    /// EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, ...).
    init(privateKey: [UInt8]) throws {
        guard let pointer = EVP_PKEY_new_raw_private_key_ex(nil, "X25519", nil, privateKey,
                                                            privateKey.count) else {
            throw OpenSSL.error("EVP_PKEY_new_raw_private_key_ex(X25519) failed")
        }
        self.pointer = pointer
    }

    /// EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, ...).
    init(publicKey: [UInt8]) throws {
        guard let pointer = EVP_PKEY_new_raw_public_key_ex(nil, "X25519", nil, publicKey,
                                                           publicKey.count) else {
            throw OpenSSL.error("EVP_PKEY_new_raw_public_key_ex(X25519) failed")
        }
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }
}
