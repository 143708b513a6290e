import Crypto

/// The authenticated-encryption envelope around every object and blob:
///
///     0      1 byte   format version (1)
///     1      4 bytes  key generation, big-endian
///     5     16 bytes  session id (random per writer session)
///     21    12 bytes  nonce = 4 zero bytes || 64-bit big-endian message counter
///     33     n bytes  AES-256-GCM ciphertext
///     33+n  16 bytes  GCM tag
///
/// AAD = the 33 header bytes || a context string naming what the object is (so a blob
/// cannot be passed off as another blob, a snapshot as an index, ...). The GCM key is
/// derived per session; within a session the counter only grows, so no (key, nonce) pair
/// ever repeats without relying on random-nonce birthday bounds.
public enum Envelope {
    public static let version: UInt8 = 1
    public static let headerLength = 33
    public static let tagLength = 16
    public static let overhead = headerLength + tagLength
}

/// Encrypts for one writer session. Thread-safe: the counter is taken under a lock.
public final class Sealer: @unchecked Sendable {
    private let keys: RepositoryKeys
    private let sessionID: [UInt8]
    private let key: [UInt8]
    private var counter: UInt64 = 0
    private let lock = Mutex()

    public init(keys: RepositoryKeys) throws {
        self.keys = keys
        self.sessionID = SecureRandom.bytes(count: 16)
        self.key = try keys.sessionKey(sessionID)
    }

    deinit {
        var k = key
        secureZero(&k)
    }

    public func seal(_ plaintext: UnsafeRawBufferPointer, context: [UInt8]) throws -> [UInt8] {
        let n: UInt64 = lock.withLock { counter += 1; return counter }
        var out = [UInt8]()
        out.reserveCapacity(Envelope.overhead + plaintext.count)
        out.append(Envelope.version)
        let g = keys.generation
        out.append(contentsOf: [UInt8(g >> 24 & 0xff), UInt8(g >> 16 & 0xff), UInt8(g >> 8 & 0xff), UInt8(g & 0xff)])
        out.append(contentsOf: sessionID)
        out.append(contentsOf: [0, 0, 0, 0])
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(n >> UInt64(s) & 0xff)) }
        let nonce = Array(out[21..<33])
        let aad = out + context
        try aad.withUnsafeBytes { a in
            try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: a, into: &out)
        }
        return out
    }

    public func seal(_ plaintext: [UInt8], context: [UInt8]) throws -> [UInt8] {
        try plaintext.withUnsafeBytes { try seal($0, context: context) }
    }
}

/// Decrypts envelopes from any session. Thread-safe; caches derived session keys.
public final class Opener: @unchecked Sendable {
    private let keys: RepositoryKeys
    private var cache: [[UInt8]: [UInt8]] = [:]
    private let lock = Mutex()

    public init(keys: RepositoryKeys) { self.keys = keys }

    /// Opens an envelope; `what` names the object in error messages.
    public func open(_ envelope: UnsafeRawBufferPointer, context: [UInt8], what: String) throws -> [UInt8] {
        guard envelope.count >= Envelope.overhead else {
            throw StoreError(.corrupt, "\(what): truncated ciphertext (\(envelope.count) bytes)")
        }
        guard envelope[0] == Envelope.version else {
            throw StoreError(.corrupt, "\(what): unknown envelope version \(envelope[0])")
        }
        let generation = UInt32(envelope[1]) << 24 | UInt32(envelope[2]) << 16 | UInt32(envelope[3]) << 8 | UInt32(envelope[4])
        guard generation == keys.generation else {
            throw StoreError(.corrupt, "\(what): encrypted with unknown key generation \(generation)")
        }
        let header = Array(envelope[0..<Envelope.headerLength])
        let session = Array(header[5..<21])
        let nonce = Array(header[21..<33])
        let key: [UInt8] = try lock.withLock {
            if let k = cache[session] { return k }
            if cache.count > 4096 { cache.removeAll() }
            let k = try keys.sessionKey(session)
            cache[session] = k
            return k
        }
        let aad = header + context
        do {
            return try aad.withUnsafeBytes { a in
                try AESGCM.open(key: key, nonce: nonce,
                                sealed: UnsafeRawBufferPointer(rebasing: envelope[Envelope.headerLength...]), aad: a)
            }
        } catch CryptoError.authenticationFailed {
            throw StoreError(.corrupt, "\(what): authentication failed (data damaged or tampered with)")
        }
    }

    public func open(_ envelope: [UInt8], context: [UInt8], what: String) throws -> [UInt8] {
        try envelope.withUnsafeBytes { try open($0, context: context, what: what) }
    }
}

/// Context strings bound into the AAD of each object kind.
public enum EnvelopeContext {
    public static let snapshot = Array("coffer:snapshot".utf8)
    public static let index = Array("coffer:index".utf8)
    public static let packHeader = Array("coffer:pack-header".utf8)
    public static func blob(_ type: BlobType, _ id: BlobID) -> [UInt8] {
        Array("coffer:blob".utf8) + [type.rawValue] + id.bytes
    }
}
