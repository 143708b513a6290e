internal import COpenSSL
#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Zeroing and random generation (OPENSSL_cleanse, RAND_bytes).
enum OpenSSLMemory {
    /// OPENSSL_cleanse: zeroes `buffer` in a way the optimiser may not elide.
    static func cleanse(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let address = buffer.baseAddress, buffer.count > 0 else { return }
        OPENSSL_cleanse(address, buffer.count)
    }

    /// OPENSSL_cleanse over an array's storage; the count is kept.
    static func cleanse(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { cleanse($0) }
    }

    /// RAND_bytes into `buffer`; a failing system RNG is unrecoverable, so this traps.
    static func randomFill(_ buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while offset < buffer.count {
            let chunk = min(buffer.count - offset, Int(Int32.max))
            let pointer = buffer.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self)
            if RAND_bytes(pointer, Int32(chunk)) != 1 {
                fatalError("RAND_bytes failed: " + OpenSSL.drainErrors(context: "RNG failure"))
            }
            offset += chunk
        }
    }

    /// `count` bytes from RAND_bytes.
    static func randomBytes(count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            randomFill(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }
}

/// A private allocation for secrets: best-effort mlock'ed (a failing mlock, e.g. RLIMIT_MEMLOCK,
/// is tolerated), OPENSSL_cleanse'd, munlock'ed and freed on deinit.
struct LockedBuffer: ~Copyable {
    private let storage: UnsafeMutableRawBufferPointer
    private let locked: Bool

    /// A copy of `bytes` in locked memory.
    init(copying bytes: [UInt8]) {
        (storage, locked) = Self.allocate(count: bytes.count)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress, !source.isEmpty {
                storage.baseAddress!.copyMemory(from: base, byteCount: source.count)
            }
        }
    }

    /// `count` RAND_bytes written directly into locked memory.
    init(randomCount count: Int) {
        (storage, locked) = Self.allocate(count: count)
        OpenSSLMemory.randomFill(storage)
    }

    private static func allocate(count: Int) -> (UnsafeMutableRawBufferPointer, Bool) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        let locked = mlock(raw, max(count, 1)) == 0
        return (UnsafeMutableRawBufferPointer(start: raw, count: count), locked)
    }

    var count: Int { storage.count }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    deinit {
        OpenSSLMemory.cleanse(storage)
        if locked { _ = munlock(storage.baseAddress!, max(storage.count, 1)) }
        storage.baseAddress!.deallocate()
    }
}
