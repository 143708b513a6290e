/// Keyed HMAC-SHA256 (RFC 2104). The key is absorbed once into a template EVP_MAC_CTX; every
/// call works on its own EVP_MAC_CTX_dup copy, so one instance may be used concurrently from many
/// threads.
public final class HMACSHA256: @unchecked Sendable {
    private let template: OpenSSLHMACTemplate

    /// Prepares the keyed template. The corresponding C function is EVP_MAC_init.
    public init(key: SecretBytes) {
        template = OpenSSLHMACTemplate(key: key)
    }

    /// The 32-byte tag of `data`. The corresponding C functions are EVP_MAC_CTX_dup,
    /// EVP_MAC_update and EVP_MAC_final.
    public func authenticationCode(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        template.authenticationCode(data)
    }

    /// The 32-byte tag of `data`. The corresponding C functions are EVP_MAC_CTX_dup,
    /// EVP_MAC_update and EVP_MAC_final.
    public func authenticationCode(_ data: [UInt8]) -> [UInt8] {
        template.authenticationCode(data)
    }

    /// One-shot 32-byte tag of `data` under `key`. The corresponding C functions are
    /// EVP_MAC_init, EVP_MAC_update and EVP_MAC_final.
    public static func authenticationCode(key: [UInt8], data: [UInt8]) -> [UInt8] {
        OpenSSLHMACTemplate.authenticationCode(key: key, data: data)
    }
}
