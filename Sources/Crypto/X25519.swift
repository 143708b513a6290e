/// X25519 Diffie-Hellman (RFC 7748) on raw 32-byte little-endian keys.
public enum X25519 {
    /// Length of private keys, public keys and shared secrets.
    public static let keyLength = 32

    /// 32 random bytes; clamping is applied by the scalar multiplication (RFC 7748 §5), so any
    /// 32 bytes form a valid private key. The corresponding C function is RAND_bytes.
    public static func generatePrivateKey() -> [UInt8] {
        SecureRandom.bytes(count: keyLength)
    }

    /// X25519(privateKey, 9). Throws `.invalidParameter` unless the key is 32 bytes. The
    /// corresponding C functions are EVP_PKEY_new_raw_private_key_ex and EVP_PKEY_get_raw_public_key.
    public static func publicKey(privateKey: [UInt8]) throws -> [UInt8] {
        try checkLength(privateKey, "private key")
        return try OpenSSLX25519.publicKey(privateKey: privateKey)
    }

    /// X25519(privateKey, publicKey). Non-canonical public keys are accepted as RFC 7748 §5 says.
    /// Throws `.invalidParameter` if either key is not 32 bytes or the result would be all zeros
    /// (a low-order public key, RFC 7748 §6.1). The corresponding C function is EVP_PKEY_derive.
    public static func sharedSecret(privateKey: [UInt8], publicKey: [UInt8]) throws -> [UInt8] {
        try checkLength(privateKey, "private key")
        try checkLength(publicKey, "public key")
        let secret = try OpenSSLX25519.sharedSecret(privateKey: privateKey, publicKey: publicKey)
        // Belt and braces: libcrypto already refuses this; check in constant time anyway.
        guard secret.reduce(0, |) != 0 else {
            throw CryptoError.invalidParameter("X25519 shared secret is all zeros (low-order public key)")
        }
        return secret
    }

    private static func checkLength(_ key: [UInt8], _ what: String) throws {
        guard key.count == keyLength else {
            throw CryptoError.invalidParameter("X25519 \(what) must be 32 bytes, got \(key.count)")
        }
    }
}
