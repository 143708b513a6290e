import Crypto

/// The keys a read-capable client holds once a key slot is unlocked.
///
/// Everything derives from one random 64-byte master secret with HKDF-SHA256
/// (salt = repository id), so slots only ever wrap that one secret:
/// - `dataKey`     ("coffer/v1/data")      AES-256-GCM root key; each writer session derives its own key from it
/// - `chunkIDKey`  ("coffer/v1/chunk-id")  HMAC-SHA256 key naming blobs
/// - `gear`        ("coffer/v1/chunker")   the chunker's gear table, so cut points do not fingerprint content
public final class RepositoryKeys: @unchecked Sendable {
    public static let masterLength = 64
    public let repositoryID: [UInt8]
    public let master: SecretBytes
    let dataKey: SecretBytes
    public let chunkID: HMACSHA256
    public let gear: GearTable
    /// Key generation written into every envelope (rotation bumps it; see docs/FORMAT.md).
    public let generation: UInt32 = 0

    public init(master: SecretBytes, repositoryID: [UInt8]) throws {
        precondition(master.count == RepositoryKeys.masterLength)
        self.repositoryID = repositoryID
        self.master = master
        let m = master.copyBytes()
        defer { var m2 = m; secureZero(&m2) }
        var d = try HKDF.sha256(inputKey: m, salt: repositoryID, info: Array("coffer/v1/data".utf8), outputLength: 32)
        dataKey = SecretBytes(d)
        secureZero(&d)
        var c = try HKDF.sha256(inputKey: m, salt: repositoryID, info: Array("coffer/v1/chunk-id".utf8), outputLength: 32)
        chunkID = HMACSHA256(key: SecretBytes(c))
        secureZero(&c)
        let g = try HKDF.sha256(inputKey: m, salt: repositoryID, info: Array("coffer/v1/chunker".utf8), outputLength: 256 * 8)
        var values = [UInt64](repeating: 0, count: 256)
        for i in 0..<256 {
            var v: UInt64 = 0
            for j in 0..<8 { v |= UInt64(g[i * 8 + j]) << (8 * UInt64(j)) }
            values[i] = v
        }
        gear = GearTable(values: values)
    }

    public func blobID(_ plaintext: UnsafeRawBufferPointer) -> BlobID {
        BlobID(bytes: chunkID.authenticationCode(plaintext))
    }
    public func blobID(_ plaintext: [UInt8]) -> BlobID {
        BlobID(bytes: chunkID.authenticationCode(plaintext))
    }

    /// Per-session AES-256-GCM key: HKDF(dataKey, salt: sessionID, info: "coffer/v1/session").
    func sessionKey(_ sessionID: [UInt8]) throws -> [UInt8] {
        try dataKey.withUnsafeBytes { raw in
            try HKDF.sha256(inputKey: Array(raw), salt: sessionID, info: Array("coffer/v1/session".utf8), outputLength: 32)
        }
    }
}
