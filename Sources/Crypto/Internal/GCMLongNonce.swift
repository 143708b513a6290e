/// Support for GCM nonces longer than OpenSSL 3 accepts (128 bytes).
///
/// For a nonce that is not 12 bytes, GCM's pre-counter block is J0 = GHASH_H(IV || 0-pad ||
/// [0]_64 || [len(IV)]_64) (SP 800-38D §7.1), and everything else depends only on J0. For a
/// 16-byte IV' that is J0' = IV'·H² ⊕ L·H with L = [0]_64 || [128]_64, so choosing
/// IV' = (J0 ⊕ L·H)·H⁻² makes OpenSSL derive exactly the J0 of the long nonce.
enum GCMLongNonce {
    /// The 16-byte nonce with the same J0 as `nonce` under `key` (`nonce.count` > 128).
    static func equivalentNonce(for nonce: [UInt8], key: [UInt8]) throws -> [UInt8] {
        var hashKeyBytes = try OpenSSLCipher.encryptBlock(key: key, block: [UInt8](repeating: 0, count: 16))
        let h = GF128(block: hashKeyBytes)
        secureZero(&hashKeyBytes)
        guard !h.isZero else {
            throw CryptoError.invalidParameter("AES-GCM: degenerate key (GHASH key is zero) for a long nonce")
        }

        var j0 = GF128.zero
        var offset = 0
        while offset < nonce.count {
            j0 = (j0 ^ GF128(block: nonce[offset..<min(offset + 16, nonce.count)])) * h
            offset += 16
        }
        j0 = (j0 ^ GF128(high: 0, low: UInt64(nonce.count) * 8)) * h

        let lengthBlock = GF128(high: 0, low: 128)
        let hInverse = h.inverse
        return ((j0 ^ lengthBlock * h) * (hInverse * hInverse)).bytes
    }
}
