internal import CSodium

/// The one call into libsodium: `crypto_pwhash` with Argon2id version 0x13 — one lane, a
/// 16-byte salt, no secret or associated data. Every pointer stays inside this function.
enum SodiumLibrary {
    static let saltBytes = Int(crypto_pwhash_SALTBYTES)

    /// `sodium_init` picks the SIMD block function for this CPU; safe to call more than once.
    private static let initialised: Bool = sodium_init() >= 0

    static func argon2id(password: [UInt8], salt: [UInt8], iterations: UInt32, memoryKiB: UInt32,
                         length: Int) throws -> [UInt8] {
        guard initialised else { throw CryptoError.invalidParameter("libsodium failed to initialise") }
        guard salt.count == saltBytes, length > 0, !password.isEmpty else { throw CryptoError.invalidParameter("libsodium argon2id needs a \(saltBytes)-byte salt and a non-empty password") }
        var out = [UInt8](repeating: 0, count: length)
        var password = password
        let rc: Int32 = out.withUnsafeMutableBufferPointer { o in
            password.withUnsafeBufferPointer { p in
                salt.withUnsafeBufferPointer { s in
                    p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(1, p.count)) { pc in
                        crypto_pwhash(o.baseAddress!, UInt64(o.count), pc, UInt64(p.count), s.baseAddress!,
                                      UInt64(iterations), Int(memoryKiB) << 10, crypto_pwhash_ALG_ARGON2ID13)
                    }
                }
            }
        }
        secureZero(&password)
        guard rc == 0 else {
            secureZero(&out)
            throw CryptoError.invalidParameter("argon2id: libsodium refused the parameters or ran out of memory")
        }
        return out
    }
}
