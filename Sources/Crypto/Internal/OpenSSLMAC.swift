internal import COpenSSL

/// HMAC-SHA256 through EVP_MAC. A keyed template context is prepared once; each computation works
/// on an EVP_MAC_CTX_dup of it, so concurrent callers never share mutable state (dup only reads the
/// template).
struct OpenSSLHMACTemplate: ~Copyable {
    static let hmac = FetchedAlgorithm("HMAC") { EVP_MAC_fetch(nil, $0, nil) }
    private let template: OpaquePointer

    /// EVP_MAC_CTX_new + EVP_MAC_init(key, digest=SHA256). The key is copied into libcrypto.
    init(key: SecretBytes) {
        template = key.withUnsafeBytes { Self.newKeyedContext(key: $0) }
    }

    /// A fresh EVP_MAC_CTX keyed for HMAC-SHA256 (EVP_MAC_CTX_new + EVP_MAC_init).
    private static func newKeyedContext(key: UnsafeRawBufferPointer) -> OpaquePointer {
        guard let context = EVP_MAC_CTX_new(hmac.pointer) else { fatalError("EVP_MAC_CTX_new failed") }
        var params = [OpenSSL.utf8Param("digest", "SHA256"), OpenSSL.endParam()]
        guard EVP_MAC_init(context, OpenSSL.base(key), key.count, &params) == 1 else {
            fatalError(OpenSSL.drainErrors(context: "EVP_MAC_init(HMAC-SHA256) failed"))
        }
        return context
    }

    /// One-shot HMAC-SHA256 without a template (EVP_MAC_init / update / final on a fresh context).
    static func authenticationCode(key: [UInt8], data: [UInt8]) -> [UInt8] {
        let context = key.withUnsafeBytes { newKeyedContext(key: $0) }
        defer { EVP_MAC_CTX_free(context) }
        return data.withUnsafeBytes { finish(context, $0) }
    }

    /// Tag of an array via the template (see `authenticationCode(_:)`).
    func authenticationCode(_ data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { authenticationCode($0) }
    }

    /// EVP_MAC_CTX_dup + EVP_MAC_update + EVP_MAC_final; returns the 32-byte tag.
    func authenticationCode(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        guard let context = EVP_MAC_CTX_dup(template) else {
            fatalError(OpenSSL.drainErrors(context: "EVP_MAC_CTX_dup failed"))
        }
        defer { EVP_MAC_CTX_free(context) }
        return Self.finish(context, data)
    }

    /// EVP_MAC_update + EVP_MAC_final on a keyed context; returns the 32-byte tag.
    private static func finish(_ context: OpaquePointer, _ data: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: OpenSSLDigest.sha256Length) { out, initialized in
            var length = 0
            guard data.isEmpty || EVP_MAC_update(context, data.baseAddress, data.count) == 1,
                  EVP_MAC_final(context, out.baseAddress, &length, out.count) == 1,
                  length == OpenSSLDigest.sha256Length else {
                fatalError(OpenSSL.drainErrors(context: "HMAC-SHA256 computation failed"))
            }
            initialized = length
        }
    }

    deinit {
        EVP_MAC_CTX_free(template)
    }
}
