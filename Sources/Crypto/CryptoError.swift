/// Errors thrown by the Crypto module.
///
/// - `authenticationFailed`: an AEAD tag or an AES key-unwrap integrity check failed (or the sealed /
///   wrapped data is too short to carry one). It is never folded into the other cases, so callers can
///   treat it as "data corrupted or tampered with".
/// - `invalidParameter`: the caller passed an unusable argument (wrong key size, empty nonce,
///   tag length out of range, output length out of range, ...).
/// - `openssl`: libcrypto reported an unexpected failure; the payload is the packed
///   `ERR_get_error()` text. The thread's OpenSSL error queue is always cleared afterwards.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    case authenticationFailed
    case invalidParameter(String)
    case openssl(String)

    public var description: String {
        switch self {
        case .authenticationFailed:
            return "CryptoError.authenticationFailed: integrity check failed"
        case .invalidParameter(let message):
            return "CryptoError.invalidParameter: \(message)"
        case .openssl(let message):
            return "CryptoError.openssl: \(message)"
        }
    }
}
