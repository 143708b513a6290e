import Crypto

/// Store-side access to the CSPRNG (keeps `Crypto` the only place touching OpenSSL).
enum SecureRandomBytes {
    static func get(_ count: Int) -> [UInt8] { SecureRandom.bytes(count: count) }
}
