import Crypto

/// The keys a read-capable client holds once a key slot is unlocked.
///
/// Everything derives from one random 64-byte master secret with HKDF-SHA256
/// (salt = repository id), so slots only ever wrap that one secret:
/// - `dataKey`     ("coffer/v1/data")      AES-256-GCM root key; each writer session derives its own key from it
/// - `chunkIDKey`  ("coffer/v1/chunk-id")  HMAC-SHA256 key naming blobs
/// - `gear`        ("coffer/v1/chunker")   the chunker's gear table, so cut points do not fingerprint content
/// - `indexKey`    ("coffer/v1/index")     AES-256-GCM root key of index files and locks, which
///                                         write-only keys read too (to deduplicate)
/// - `sealingKey`  ("coffer/v1/x25519")    X25519 private key; write-only keys encrypt to its public half
/// - writer keys   ("coffer/v1/writer" ‖ writer id)  one per write-only key, authenticating what it writes
public final class RepositoryKeys: @unchecked Sendable {
    public static let masterLength = 64

    /// The keys of one key generation (docs/FORMAT.md §3.1): generation 0 is the master secret
    /// made by `init`; `key rotate` makes a new random master secret per generation.
    final class Generation: @unchecked Sendable {
        let number: UInt32
        let master: SecretBytes
        let dataKey: SecretBytes
        let sealingPrivateKey: SecretBytes
        let sealingPublicKey: [UInt8]

        init(number: UInt32, master: SecretBytes, repositoryID: [UInt8]) throws {
            precondition(master.count == RepositoryKeys.masterLength)
            self.number = number
            self.master = master
            dataKey = try RepositoryKeys.derive(master, repositoryID, "coffer/v1/data")
            sealingPrivateKey = try RepositoryKeys.derive(master, repositoryID, "coffer/v1/x25519")
            sealingPublicKey = try sealingPrivateKey.withUnsafeBytes { try X25519.publicKey(privateKey: Array($0)) }
        }
    }

    public let repositoryID: [UInt8]
    /// The master secret of the newest generation these keys hold: what slots wrap and the
    /// recovery sheet prints.
    public var master: SecretBytes { newest.master }
    let newest: Generation
    let generations: [UInt32: Generation]
    /// What this client writes with (symmetric envelopes under the newest data key).
    public let writer: WriterKeys
    /// Newest key generation held; written into every envelope this client makes.
    public var generation: UInt32 { newest.number }
    public var sealingPublicKey: [UInt8] { newest.sealingPublicKey }

    static func derive(_ master: SecretBytes, _ repositoryID: [UInt8], _ info: String, _ length: Int = 32) throws -> SecretBytes {
        try master.withUnsafeBytes { m in
            var k = try HKDF.sha256(inputKey: Array(m), salt: repositoryID, info: Array(info.utf8), outputLength: length)
            defer { secureZero(&k) }
            return SecretBytes(k)
        }
    }

    /// Keys of a repository that was never rotated (generation 0 only).
    public convenience init(master: SecretBytes, repositoryID: [UInt8]) throws {
        try self.init(masters: [0: master], repositoryID: repositoryID)
    }

    /// Keys from the master secrets of several generations. Generation 0 must be present: the
    /// deduplication keys (chunk ids, chunker, index) always derive from it, so rotation never
    /// breaks deduplication with older data.
    public init(masters: [UInt32: SecretBytes], repositoryID: [UInt8]) throws {
        guard let first = masters[0], let top = masters.keys.max() else {
            throw StoreError(.corrupt, "the master secret of key generation 0 is missing")
        }
        self.repositoryID = repositoryID
        var gens: [UInt32: Generation] = [:]
        for (n, m) in masters { gens[n] = try Generation(number: n, master: m, repositoryID: repositoryID) }
        generations = gens
        newest = gens[top]!
        writer = WriterKeys(repositoryID: repositoryID, generation: top,
                            chunkIDKey: try RepositoryKeys.derive(first, repositoryID, "coffer/v1/chunk-id"),
                            chunkerKey: try RepositoryKeys.derive(first, repositoryID, "coffer/v1/chunker", GearTable.keyLength),
                            indexKey: try RepositoryKeys.derive(first, repositoryID, "coffer/v1/index"),
                            mode: .symmetric(newest.dataKey))
    }

    public var chunkID: HMACSHA256 { writer.chunkID }
    public var gear: GearTable { writer.gear }
    public func blobID(_ plaintext: UnsafeRawBufferPointer) -> BlobID { writer.blobID(plaintext) }
    public func blobID(_ plaintext: [UInt8]) -> BlobID { writer.blobID(plaintext) }

    func generation(_ n: UInt32, what: String) throws -> Generation {
        guard let g = generations[n] else {
            throw StoreError(.corrupt, "\(what): encrypted with key generation \(n), which this key cannot open (it holds generations \(generations.keys.sorted().map(String.init).joined(separator: ", ")))")
        }
        return g
    }

    /// The writer key of write-only key `writerID` (16 bytes) issued in generation `n`.
    func writerKey(_ writerID: [UInt8], generation n: UInt32, what: String = "write-only key") throws -> SecretBytes {
        try RepositoryKeys.derive(try generation(n, what: what).master, repositoryID,
                                  "coffer/v1/writer", 32, suffix: writerID)
    }

    static func derive(_ master: SecretBytes, _ repositoryID: [UInt8], _ info: String, _ length: Int, suffix: [UInt8]) throws -> SecretBytes {
        try master.withUnsafeBytes { m in
            var k = try HKDF.sha256(inputKey: Array(m), salt: repositoryID, info: Array(info.utf8) + suffix, outputLength: length)
            defer { secureZero(&k) }
            return SecretBytes(k)
        }
    }

    /// The keys of a new write-only key with id `writerID` in the newest generation: everything
    /// needed to write and deduplicate, nothing that decrypts.
    public func writeOnlyKeys(writerID: [UInt8]) throws -> WriterKeys {
        WriterKeys(repositoryID: repositoryID, generation: generation, chunkIDKey: writer.chunkIDKey,
                   chunkerKey: writer.chunkerKey, indexKey: writer.indexKey,
                   mode: .sealed(recipient: sealingPublicKey, writerID: writerID,
                                 writerKey: try writerKey(writerID, generation: generation)))
    }

    /// Per-session AES-256-GCM key of a symmetric (version 1) envelope of generation `n`.
    func sessionKey(_ sessionID: [UInt8], generation n: UInt32, what: String) throws -> [UInt8] {
        try WriterKeys.symmetricSessionKey(try generation(n, what: what).dataKey, sessionID)
    }

    /// Per-session key of a sealed (version 3) envelope: X25519 with the ephemeral public key,
    /// bound to the writer's key.
    func sealedSessionKey(writerID: [UInt8], ephemeralPublicKey: [UInt8], generation n: UInt32, what: String) throws -> [UInt8] {
        let g = try generation(n, what: what)
        var shared = try g.sealingPrivateKey.withUnsafeBytes {
            try X25519.sharedSecret(privateKey: Array($0), publicKey: ephemeralPublicKey)
        }
        defer { secureZero(&shared) }
        return try WriterKeys.sealedSessionKey(shared: shared, writerKey: try writerKey(writerID, generation: n, what: what),
                                               writerID: writerID, ephemeralPublicKey: ephemeralPublicKey,
                                               recipient: g.sealingPublicKey)
    }
}

/// What a writer holds: the deduplication keys (chunk ids, chunker, index files) and the way it
/// encrypts. A read-capable client encrypts symmetrically; a write-only key encrypts to the
/// repository's X25519 public key and so cannot decrypt anything it wrote.
public final class WriterKeys: @unchecked Sendable {
    public enum Mode {
        /// Version 1 envelopes under the data root key (read-capable writers).
        case symmetric(SecretBytes)
        /// Version 3 envelopes sealed to `recipient` (write-only keys).
        case sealed(recipient: [UInt8], writerID: [UInt8], writerKey: SecretBytes)
    }
    public let repositoryID: [UInt8]
    public let generation: UInt32
    let chunkIDKey: SecretBytes
    let chunkerKey: SecretBytes
    let indexKey: SecretBytes
    public let mode: Mode
    public let chunkID: HMACSHA256
    public let gear: GearTable
    /// Key of the file cache's extent fingerprints (GMAC, docs/FORMAT.md §11): derived from the
    /// chunk-id key, so a rotated chunk-id key never matches fingerprints made under the old one.
    let fingerprintKey: [UInt8]

    public init(repositoryID: [UInt8], generation: UInt32, chunkIDKey: SecretBytes, chunkerKey: SecretBytes,
                indexKey: SecretBytes, mode: Mode) {
        precondition(chunkIDKey.count == 32 && indexKey.count == 32 && chunkerKey.count == GearTable.keyLength)
        self.repositoryID = repositoryID
        self.generation = generation
        self.chunkIDKey = chunkIDKey
        self.chunkerKey = chunkerKey
        self.indexKey = indexKey
        self.mode = mode
        chunkID = HMACSHA256(key: chunkIDKey)
        gear = chunkerKey.withUnsafeBytes { GearTable(key: $0) }
        var ikm = chunkIDKey.copyBytes()
        defer { secureZero(&ikm) }
        guard let k = try? HKDF.sha256(inputKey: ikm, salt: repositoryID, info: Array("coffer extent fingerprint".utf8),
                                       outputLength: 32) else { fatalError("HKDF-SHA256 with a 32-byte key failed") }
        fingerprintKey = k
    }

    /// True for a write-only key (it cannot decrypt snapshots, trees or data).
    public var isWriteOnly: Bool {
        if case .sealed = mode { return true }
        return false
    }

    /// The write-only key's id (nil for read-capable writers).
    public var writerID: [UInt8]? {
        if case .sealed(_, let id, _) = mode { return id }
        return nil
    }

    public func blobID(_ plaintext: UnsafeRawBufferPointer) -> BlobID {
        BlobID(bytes: chunkID.authenticationCode(plaintext))
    }
    public func blobID(_ plaintext: [UInt8]) -> BlobID {
        BlobID(bytes: chunkID.authenticationCode(plaintext))
    }

    /// The file-cache fingerprint of `data` under `nonce` (use a nonce for one input only).
    func fingerprint(_ data: UnsafeRawBufferPointer, nonce: [UInt8]) -> ExtentFingerprint {
        guard let tag = try? AESGCM.gmac(key: fingerprintKey, nonce: nonce, data: data) else {
            fatalError("GMAC with a 32-byte key and a 12-byte nonce failed")
        }
        return ExtentFingerprint(nonce: nonce, tag: tag)
    }

    static func symmetricSessionKey(_ root: SecretBytes, _ sessionID: [UInt8]) throws -> [UInt8] {
        try root.withUnsafeBytes { raw in
            try HKDF.sha256(inputKey: Array(raw), salt: sessionID, info: Array("coffer/v1/session".utf8), outputLength: 32)
        }
    }

    /// HKDF-SHA256(ikm = X25519 shared secret ‖ writer key, salt = ephemeral public ‖ recipient public,
    /// info = "coffer/v1/sealed-session" ‖ writer id).
    static func sealedSessionKey(shared: [UInt8], writerKey: SecretBytes, writerID: [UInt8],
                                 ephemeralPublicKey: [UInt8], recipient: [UInt8]) throws -> [UInt8] {
        try writerKey.withUnsafeBytes { w in
            var ikm = shared + Array(w)
            defer { secureZero(&ikm) }
            return try HKDF.sha256(inputKey: ikm, salt: ephemeralPublicKey + recipient,
                                   info: Array("coffer/v1/sealed-session".utf8) + writerID, outputLength: 32)
        }
    }
}
