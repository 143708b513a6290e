/// HKDF (RFC 5869).
public enum HKDF {
    /// Largest output HKDF-SHA256 may produce: 255 * HashLen.
    public static let maximumSHA256OutputLength = 255 * 32

    /// HKDF-SHA256 extract-then-expand. An empty `salt` means HashLen zero bytes (RFC 5869 §2.2).
    /// Throws `.invalidParameter` unless `1 <= outputLength <= 8160`.
    /// The corresponding C function is EVP_KDF_derive (EVP_KDF "HKDF", digest SHA256).
    public static func sha256(inputKey: [UInt8], salt: [UInt8], info: [UInt8], outputLength: Int) throws -> [UInt8] {
        guard outputLength >= 1, outputLength <= maximumSHA256OutputLength else {
            throw CryptoError.invalidParameter(
                "HKDF-SHA256 output length \(outputLength) outside 1...\(maximumSHA256OutputLength)")
        }
        return try OpenSSLKDF.hkdfSHA256(key: inputKey, salt: salt, info: info, length: outputLength)
    }
}
