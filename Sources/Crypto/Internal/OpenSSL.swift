internal import COpenSSL

/// Shared plumbing for the thin libcrypto wrappers: error-queue draining, fetched-algorithm
/// caching and OSSL_PARAM construction. Everything that touches C lives in `Internal/OpenSSL*.swift`.
enum OpenSSL {
    /// Drains the calling thread's OpenSSL error queue (ERR_get_error / ERR_error_string_n) into one
    /// string and leaves the queue empty (ERR_clear_error).
    static func drainErrors(context: String) -> String {
        var messages: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(cString: buffer))
        }
        ERR_clear_error()
        return messages.isEmpty ? context : "\(context): " + messages.joined(separator: "; ")
    }

    /// A `CryptoError.openssl` carrying the drained error queue.
    static func error(_ context: String) -> CryptoError {
        .openssl(drainErrors(context: context))
    }

    /// Discards any queued OpenSSL errors (ERR_clear_error), e.g. after a tag mismatch.
    static func clearErrors() {
        ERR_clear_error()
    }

    /// Throws `CryptoError.openssl` unless `status` is 1 (the libcrypto success convention).
    static func check(_ status: Int32, _ context: @autoclosure () -> String) throws {
        if status != 1 { throw error(context()) }
    }

    /// A non-null base address for `buffer` even when it is empty (libcrypto rejects NULL inputs).
    static func base(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8> {
        if let address = buffer.baseAddress {
            return address.assumingMemoryBound(to: UInt8.self)
        }
        return UnsafeRawPointer(emptyByte).assumingMemoryBound(to: UInt8.self)
    }

    /// Backing storage for `base(_:)` on empty buffers; never written.
    private static let emptyByte = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

    /// A NUL-terminated C string with static lifetime, as OSSL_PARAM keys must outlive the call.
    static func cString(_ string: StaticString) -> UnsafeMutablePointer<CChar> {
        precondition(string.hasPointerRepresentation && string.isASCII)
        return UnsafeMutableRawPointer(mutating: string.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    /// OSSL_PARAM_construct_utf8_string for a static key and value.
    static func utf8Param(_ key: StaticString, _ value: StaticString) -> OSSL_PARAM {
        OSSL_PARAM_construct_utf8_string(cString(key), cString(value), 0)
    }

    /// OSSL_PARAM_construct_octet_string; `bytes` must stay valid until the parameter is consumed.
    static func octetParam(_ key: StaticString, _ bytes: UnsafeRawBufferPointer) -> OSSL_PARAM {
        OSSL_PARAM_construct_octet_string(cString(key), UnsafeMutableRawPointer(mutating: base(bytes)), bytes.count)
    }

    /// OSSL_PARAM_construct_end.
    static func endParam() -> OSSL_PARAM {
        OSSL_PARAM_construct_end()
    }
}

/// An algorithm object fetched once from the default library context (EVP_CIPHER_fetch,
/// EVP_MD_fetch, EVP_MAC_fetch, EVP_KDF_fetch) and shared by all threads; libcrypto treats fetched
/// algorithms as immutable and reference-counts them atomically. Never freed.
struct FetchedAlgorithm: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ name: String, _ fetch: (String) -> OpaquePointer?) {
        guard let pointer = fetch(name) else {
            fatalError("libcrypto has no \(name): " + OpenSSL.drainErrors(context: "fetch failed"))
        }
        self.pointer = pointer
    }
}
