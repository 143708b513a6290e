internal import COpenSSL

/// SHA-256 through the EVP_MD interface.
enum OpenSSLDigest {
    static let sha256Length = 32
    static let sha256 = FetchedAlgorithm("SHA256") { EVP_MD_fetch(nil, $0, nil) }

    /// One-shot SHA-256 (EVP_Digest) of an array.
    static func sha256(_ data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { sha256($0) }
    }

    /// One-shot SHA-256 (EVP_Digest).
    static func sha256(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: sha256Length) { out, initialized in
            var length: UInt32 = 0
            guard EVP_Digest(OpenSSL.base(data), data.count, out.baseAddress, &length, sha256.pointer, nil) == 1,
                  Int(length) == sha256Length else {
                fatalError(OpenSSL.drainErrors(context: "EVP_Digest(SHA256) failed"))
            }
            initialized = sha256Length
        }
    }
}

/// An owned EVP_MD_CTX running SHA-256 (EVP_DigestInit_ex2 / Update / Final_ex).
struct OpenSSLDigestContext: ~Copyable {
    private let context: OpaquePointer

    init() {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        self.context = context
        reset()
    }

    /// EVP_DigestInit_ex2: (re)starts a SHA-256 computation.
    func reset() {
        guard EVP_DigestInit_ex2(context, OpenSSLDigest.sha256.pointer, nil) == 1 else {
            fatalError(OpenSSL.drainErrors(context: "EVP_DigestInit_ex2(SHA256) failed"))
        }
    }

    /// EVP_DigestUpdate.
    func update(_ data: UnsafeRawBufferPointer) {
        guard !data.isEmpty else { return }
        guard EVP_DigestUpdate(context, data.baseAddress, data.count) == 1 else {
            fatalError(OpenSSL.drainErrors(context: "EVP_DigestUpdate failed"))
        }
    }

    /// EVP_DigestUpdate of an array.
    func update(_ data: [UInt8]) {
        data.withUnsafeBytes { update($0) }
    }

    /// EVP_DigestFinal_ex; the context must be `reset()` before further use.
    func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: OpenSSLDigest.sha256Length) { out, initialized in
            var length: UInt32 = 0
            guard EVP_DigestFinal_ex(context, out.baseAddress, &length) == 1,
                  Int(length) == OpenSSLDigest.sha256Length else {
                fatalError(OpenSSL.drainErrors(context: "EVP_DigestFinal_ex failed"))
            }
            initialized = OpenSSLDigest.sha256Length
        }
    }

    deinit {
        EVP_MD_CTX_free(context)
    }
}
