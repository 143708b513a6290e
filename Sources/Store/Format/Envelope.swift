import Crypto

/// The authenticated-encryption envelope around every object and blob. Three versions, one per
/// key that can have made it (the version byte says which; see docs/FORMAT.md §5):
///
///     version 1 (data)  and  version 2 (index files and locks):
///     0      1 byte   version
///     1      4 bytes  key generation, big-endian
///     5     16 bytes  session id (random per writer session)
///     21    12 bytes  nonce = 4 zero bytes || 64-bit big-endian message counter
///     33     n bytes  AES-256-GCM ciphertext, then the 16-byte GCM tag
///
///     version 3 (sealed by a write-only key to the repository's X25519 public key):
///     0      1 byte   version (3)
///     1      4 bytes  key generation, big-endian
///     5     16 bytes  writer id (the write-only key)
///     21    32 bytes  ephemeral X25519 public key (one per writer session)
///     53    12 bytes  nonce = 4 zero bytes || 64-bit big-endian message counter
///     65     n bytes  AES-256-GCM ciphertext, then the 16-byte GCM tag
///
/// AAD = the header bytes || a context string naming what the object is (so a blob cannot be
/// passed off as another blob, a snapshot as an index, ...). Session keys: version 1
/// HKDF(data key, session id), version 2 HKDF(index key, session id), version 3 HKDF over the
/// X25519 shared secret and the writer's key. Within a session the counter only grows, so no
/// (key, nonce) pair ever repeats without relying on random-nonce birthday bounds.
///
/// Index files and locks use version 2 because write-only keys must read them (to deduplicate
/// and to see locks); every other object is version 1 or 3. A reader accepts version 2 only for
/// index files and locks, since every write-only key holds the index key.
public enum Envelope {
    public static let dataVersion: UInt8 = 1
    public static let indexVersion: UInt8 = 2
    public static let sealedVersion: UInt8 = 3
    /// Header length of versions 1 and 2 (the shortest).
    public static let headerLength = 33
    public static let sealedHeaderLength = 65
    public static let tagLength = 16
    /// Smallest possible envelope overhead (versions 1 and 2).
    public static let overhead = headerLength + tagLength

    static func headerLength(version: UInt8) -> Int? {
        switch version {
        case dataVersion, indexVersion: return headerLength
        case sealedVersion: return sealedHeaderLength
        default: return nil
        }
    }

    /// Whether `context` names an object kind sealed with the index key (version 2).
    static func usesIndexKey(_ context: [UInt8]) -> Bool {
        context == EnvelopeContext.index || context == EnvelopeContext.lock
    }

    /// The writer id of a version 3 envelope (nil for other versions).
    public static func writerID(of envelope: [UInt8]) -> [UInt8]? {
        guard envelope.count >= sealedHeaderLength, envelope[0] == sealedVersion else { return nil }
        return Array(envelope[5..<21])
    }
}

/// Encrypts for one writer session. Thread-safe: counters are taken under a lock.
public final class Sealer: @unchecked Sendable {
    /// One session: a header prefix (everything before the nonce), a key and a counter.
    private final class Session {
        let prefix: [UInt8]
        let key: [UInt8]
        var counter: UInt64 = 0
        init(prefix: [UInt8], key: [UInt8]) { self.prefix = prefix; self.key = key }
        deinit { var k = key; secureZero(&k) }
    }
    private let data: Session
    private let index: Session
    private let lock = Mutex()

    public convenience init(keys: RepositoryKeys) throws {
        try self.init(writer: keys.writer)
    }

    public init(writer: WriterKeys) throws {
        let g = writer.generation
        let gen: [UInt8] = [UInt8(g >> 24 & 0xff), UInt8(g >> 16 & 0xff), UInt8(g >> 8 & 0xff), UInt8(g & 0xff)]
        let indexSession = SecureRandom.bytes(count: 16)
        index = Session(prefix: [Envelope.indexVersion] + gen + indexSession,
                        key: try WriterKeys.symmetricSessionKey(writer.indexKey, indexSession))
        switch writer.mode {
        case .symmetric(let dataKey):
            let session = SecureRandom.bytes(count: 16)
            data = Session(prefix: [Envelope.dataVersion] + gen + session,
                           key: try WriterKeys.symmetricSessionKey(dataKey, session))
        case .sealed(let recipient, let writerID, let writerKey):
            var ephemeral = X25519.generatePrivateKey()
            defer { secureZero(&ephemeral) }
            let ephemeralPublic = try X25519.publicKey(privateKey: ephemeral)
            var shared = try X25519.sharedSecret(privateKey: ephemeral, publicKey: recipient)
            defer { secureZero(&shared) }
            let key = try WriterKeys.sealedSessionKey(shared: shared, writerKey: writerKey, writerID: writerID,
                                                      ephemeralPublicKey: ephemeralPublic, recipient: recipient)
            data = Session(prefix: [Envelope.sealedVersion] + gen + writerID + ephemeralPublic, key: key)
        }
    }

    public func seal(_ plaintext: UnsafeRawBufferPointer, context: [UInt8]) throws -> [UInt8] {
        try seal(parts: [plaintext], context: context)
    }

    /// Seals the concatenation of `parts` (without joining them first).
    public func seal(parts: [UnsafeRawBufferPointer], context: [UInt8]) throws -> [UInt8] {
        let s = Envelope.usesIndexKey(context) ? index : data
        let n: UInt64 = lock.withLock { s.counter += 1; return s.counter }
        var out = s.prefix
        out.append(contentsOf: [0, 0, 0, 0])
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(n >> UInt64(shift) & 0xff)) }
        let nonce = Array(out[(out.count - 12)...])
        let aad = out + context
        try aad.withUnsafeBytes { a in
            try AESGCM.seal(key: s.key, nonce: nonce, plaintextParts: parts, aad: a, into: &out)
        }
        return out
    }

    public func seal(_ plaintext: [UInt8], context: [UInt8]) throws -> [UInt8] {
        try plaintext.withUnsafeBytes { try seal($0, context: context) }
    }
}

/// Decrypts envelopes from any session. Thread-safe; caches derived session keys.
///
/// A reader's opener (made from `RepositoryKeys`) opens every version; a write-only key's opener
/// opens only version 2 (index files and locks) and refuses the rest with `.writeOnly`.
public final class Opener: @unchecked Sendable {
    private let keys: RepositoryKeys?
    private let writer: WriterKeys
    private var cache: [[UInt8]: [UInt8]] = [:]
    private let lock = Mutex()

    public init(keys: RepositoryKeys) {
        self.keys = keys
        self.writer = keys.writer
    }

    /// An opener for a write-only key: index files and locks only.
    public init(writeOnly writer: WriterKeys) {
        self.keys = nil
        self.writer = writer
    }

    public var canReadData: Bool { keys != nil }

    /// Opens an envelope; `what` names the object in error messages.
    public func open(_ envelope: UnsafeRawBufferPointer, context: [UInt8], what: String) throws -> [UInt8] {
        guard envelope.count >= Envelope.overhead else {
            throw StoreError(.corrupt, "\(what): truncated ciphertext (\(envelope.count) bytes)")
        }
        let version = envelope[0]
        guard let headerLength = Envelope.headerLength(version: version) else {
            throw StoreError(.corrupt, "\(what): unknown envelope version \(version)")
        }
        guard envelope.count >= headerLength + Envelope.tagLength else {
            throw StoreError(.corrupt, "\(what): truncated ciphertext (\(envelope.count) bytes)")
        }
        let indexed = Envelope.usesIndexKey(context)
        guard indexed ? version != Envelope.sealedVersion : version != Envelope.indexVersion else {
            throw StoreError(.corrupt, "\(what): envelope version \(version) is not allowed for this kind of object (forged?)")
        }
        let generation = UInt32(envelope[1]) << 24 | UInt32(envelope[2]) << 16 | UInt32(envelope[3]) << 8 | UInt32(envelope[4])
        let header = Array(envelope[0..<headerLength])
        let sessionTag = Array(header[0..<(headerLength - 12)])
        let nonce = Array(header[(headerLength - 12)...])
        if version != Envelope.indexVersion && keys == nil {
            throw StoreError(.writeOnly, "\(what): a write-only key cannot decrypt this")
        }
        let key: [UInt8] = try lock.withLock {
            if let k = cache[sessionTag] { return k }
            if cache.count > 4096 { cache.removeAll() }
            let k: [UInt8]
            switch version {
            case Envelope.dataVersion: k = try keys!.sessionKey(Array(header[5..<21]), generation: generation, what: what)
            case Envelope.indexVersion: k = try WriterKeys.symmetricSessionKey(writer.indexKey, Array(header[5..<21]))
            default:
                do {
                    k = try keys!.sealedSessionKey(writerID: Array(header[5..<21]), ephemeralPublicKey: Array(header[21..<53]),
                                                   generation: generation, what: what)
                } catch let e as CryptoError {
                    throw StoreError(.corrupt, "\(what): bad ephemeral key (\(e))")
                }
            }
            cache[sessionTag] = k
            return k
        }
        let aad = header + context
        do {
            return try aad.withUnsafeBytes { a in
                try AESGCM.open(key: key, nonce: nonce,
                                sealed: UnsafeRawBufferPointer(rebasing: envelope[headerLength...]), aad: a)
            }
        } catch CryptoError.authenticationFailed {
            throw StoreError(.corrupt, "\(what): authentication failed (data damaged or tampered with)")
        }
    }

    public func open(_ envelope: [UInt8], context: [UInt8], what: String) throws -> [UInt8] {
        try envelope.withUnsafeBytes { try open($0, context: context, what: what) }
    }

    /// A write-only key knows the chunk-id key, so a blob it sealed could carry any content under
    /// any id: readers recompute the id of every version 3 blob.
    func checkBlobID(_ envelope: UnsafeRawBufferPointer, plaintext: [UInt8], id: BlobID, what: String) throws {
        guard envelope.first == Envelope.sealedVersion else { return }
        guard writer.blobID(plaintext) == id else {
            let wid = envelope.count >= 21 ? Hex.encode(Array(envelope[5..<13])) : "?"
            throw StoreError(.corrupt, "\(what): content does not match its id (written by write-only key \(wid); forged or damaged)")
        }
    }
}

/// Context strings bound into the AAD of each object kind.
public enum EnvelopeContext {
    public static let snapshot = Array("coffer:snapshot".utf8)
    public static let index = Array("coffer:index".utf8)
    public static let lock = Array("coffer:lock".utf8)
    public static let packHeader = Array("coffer:pack-header".utf8)
    public static func blob(_ type: BlobType, _ id: BlobID) -> [UInt8] {
        Array("coffer:blob".utf8) + [type.rawValue] + id.bytes
    }
}
