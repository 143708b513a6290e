internal import Glibc

/// Argon2id password-based key derivation (RFC 9106, version 0x13). One lane with a 16-byte
/// salt and no secret or associated data goes through libsodium (SIMD block function, about
/// 1.6× the scalar speed here, on one core); everything else through libargon2, the
/// designers' reference library. Both compute the same function, so either reads any slot.
public enum Argon2id {
    /// Derives `length` bytes from `password` and `salt` with `iterations` passes over
    /// `memoryKiB` KiB of memory split into `lanes` lanes, computed on up to `lanes` threads
    /// (never more than the online CPUs; the thread count does not change the result).
    /// `secret` and `associatedData` are RFC 9106's optional K and X inputs.
    /// Throws `.invalidParameter` for parameters libargon2 refuses (memory below 8 KiB per
    /// lane, an empty or too short salt, out of memory, ...).
    public static func deriveKey(password: [UInt8], salt: [UInt8], iterations: UInt32, memoryKiB: UInt32,
                                 lanes: UInt32, length: Int, secret: [UInt8] = [],
                                 associatedData: [UInt8] = []) throws -> [UInt8] {
        guard length >= 4, length <= Int(UInt32.max) else {
            throw CryptoError.invalidParameter("argon2id output length must be at least 4 bytes")
        }
        guard iterations >= 1, lanes >= 1, lanes <= 0xff_ffff else {
            throw CryptoError.invalidParameter("argon2id needs at least 1 pass and 1 lane")
        }
        if lanes == 1, salt.count == SodiumLibrary.saltBytes, secret.isEmpty, associatedData.isEmpty,
           !password.isEmpty, length >= 16, memoryKiB >= 8 {
            return try SodiumLibrary.argon2id(password: password, salt: salt, iterations: iterations,
                                              memoryKiB: memoryKiB, length: length)
        }
        let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let threads = UInt32(min(Int(lanes), cores))
        return try Argon2Library.argon2id(password: password, salt: salt, secret: secret, associatedData: associatedData,
                                          iterations: iterations, memoryKiB: memoryKiB, lanes: lanes, threads: threads,
                                          length: length)
    }
}
