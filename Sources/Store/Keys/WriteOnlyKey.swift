import Foundation
import Crypto

/// A write-only key file (`coffer key write-only --output FILE`): what a backup client needs to
/// write new snapshots and deduplicate against the repository, and nothing that decrypts.
///
/// It holds the chunk-id key and chunker table (to name and cut chunks as every other writer
/// does), the index key (to read and write index files and locks), the repository's X25519
/// public key (everything else it writes is sealed to it) and its own writer key (which binds
/// what it writes to its writer id, so readers can tell writers apart and reject a retired one).
/// The repository keeps a public record of it: a `write-only` slot in `keys/` naming the writer id.
public struct WriteOnlyKey: Codable, Sendable {
    public static let kind = "coffer-write-only-key"
    public var version: Int = 1
    public var kind: String = WriteOnlyKey.kind
    public var repository: String
    public var writer: String              // 32 hex digits
    public var generation: UInt32
    public var created: String
    public var hostname: String
    public var username: String
    public var label: String?
    public var recipient: String           // base64, X25519 public key
    public var chunkIDKey: String          // base64, 32 bytes
    public var chunkerKey: String          // base64, 2048 bytes
    public var indexKey: String            // base64, 32 bytes
    public var writerKey: String           // base64, 32 bytes
    /// First 16 bytes of SHA-256 over every other field, hex: catches a damaged or hand-edited file
    /// before it writes snapshots no reader could authenticate.
    public var check: String

    enum CodingKeys: String, CodingKey {
        case version, kind, repository, writer, generation, created, hostname, username, label, recipient, check
        case chunkIDKey = "chunk_id_key", chunkerKey = "chunker_key", indexKey = "index_key", writerKey = "writer_key"
    }

    /// Issues a new write-only key for the repository `keys` opens.
    public static func issue(keys: RepositoryKeys, label: String?) throws -> WriteOnlyKey {
        let writerID = SecureRandom.bytes(count: 16)
        let w = try keys.writeOnlyKeys(writerID: writerID)
        guard case .sealed(let recipient, _, let writerKey) = w.mode else { preconditionFailure("write-only keys seal") }
        func b64(_ s: SecretBytes) -> String { s.withUnsafeBytes { Data($0).base64EncodedString() } }
        var k = WriteOnlyKey(repository: Hex.encode(keys.repositoryID), writer: Hex.encode(writerID), generation: w.generation,
                             created: Timestamp.now().rfc3339, hostname: SystemInfo.hostname, username: SystemInfo.username,
                             label: label, recipient: Data(recipient).base64EncodedString(),
                             chunkIDKey: b64(w.chunkIDKey), chunkerKey: b64(w.chunkerKey), indexKey: b64(w.indexKey),
                             writerKey: b64(writerKey), check: "")
        k.check = k.computedCheck()
        return k
    }

    func computedCheck() -> String {
        KeyFileCheck.compute([String(version), kind, repository, writer, String(generation), created, hostname, username,
                              label ?? "", recipient, chunkIDKey, chunkerKey, indexKey, writerKey])
    }

    /// The writer keys; throws `.corrupt` when a field is damaged.
    public func writerKeys(what: String) throws -> WriterKeys {
        func bytes(_ s: String, _ n: Int, _ field: String) throws -> [UInt8] {
            guard let d = Data(base64Encoded: s), d.count == n else {
                throw StoreError(.corrupt, "\(what): field \(field) is damaged")
            }
            return Array(d)
        }
        guard kind == WriteOnlyKey.kind, version == 1 else {
            throw StoreError(.corrupt, "\(what): not a coffer write-only key file")
        }
        guard check == computedCheck() else {
            throw StoreError(.corrupt, "\(what): check value does not match (the file is damaged or was edited)")
        }
        guard let writerID = Hex.decode(writer), writerID.count == 16 else {
            throw StoreError(.corrupt, "\(what): field writer is damaged")
        }
        var c = try bytes(chunkIDKey, 32, "chunk_id_key"), g = try bytes(chunkerKey, GearTable.keyLength, "chunker_key")
        var i = try bytes(indexKey, 32, "index_key"), wk = try bytes(writerKey, 32, "writer_key")
        defer { secureZero(&c); secureZero(&g); secureZero(&i); secureZero(&wk) }
        return WriterKeys(repositoryID: Hex.decode(repository) ?? [], generation: generation,
                          chunkIDKey: SecretBytes(c), chunkerKey: SecretBytes(g), indexKey: SecretBytes(i),
                          mode: .sealed(recipient: try bytes(recipient, 32, "recipient"), writerID: writerID,
                                        writerKey: SecretBytes(wk)))
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try enc.encode(self)) + [0x0a]
    }

    /// Reads a write-only key file (refusing group/world-readable files and other kinds of key file).
    public static func load(_ path: RawPath) throws -> WriteOnlyKey {
        guard case .writeOnly(let k) = try AnyKeyFile.load(path) else {
            throw StoreError(.invalidArgument, "key file \(path) is not a write-only key")
        }
        return k
    }

    /// Writes the key file: a new file, mode 0600, never overwriting one.
    public func write(to path: RawPath) throws { try AnyKeyFile.write(try encoded(), to: path) }
}

extension KeyFile {
    /// The repository's public record of a write-only key: its writer id and who it is for.
    /// It unlocks nothing; `coffer key list` shows it and a write-only key refuses to run
    /// without its record (so `key remove` withdraws a key from honest clients).
    public static func writeOnlyRecord(_ key: WriteOnlyKey) -> KeyFile {
        var k = KeyFile(kind: "write-only", repository: key.repository, created: key.created, hostname: key.hostname,
                        username: key.username, label: key.label, kdf: nil, wrap: nil, wrappedKey: nil, recipients: nil)
        k.writer = key.writer
        k.generation = key.generation == 0 ? nil : key.generation
        return k
    }
}

extension Repository {
    /// Issues a write-only key, records it in `keys/`, and returns it with the record's name.
    public func issueWriteOnlyKey(label: String?) throws -> (key: WriteOnlyKey, slot: String) {
        let key = try WriteOnlyKey.issue(keys: try keys, label: label)
        let slot = try Repository.addKeySlot(KeyFile.writeOnlyRecord(key), to: backend)
        return (key, slot)
    }

    /// Opens a repository with a write-only key: it can back up (and read index files and locks),
    /// but cannot decrypt snapshots, trees or data. Its catalog is its own file
    /// (`catalog-writer-<id>.sqlite`) holding the index and the file cache, never a snapshot.
    public static func open(backend: Backend, writeOnlyKey key: WriteOnlyKey, keyPath: String,
                            cacheDirectory: RawPath) throws -> Repository {
        let config = try readConfig(backend)
        let writer = try key.writerKeys(what: "key file \(keyPath)")
        let (record, _) = try registeredRecord(backend: backend, config: config, keyRepository: key.repository,
                                               kind: "write-only", id: key.writer, keyPath: keyPath,
                                               why: "withdrawn ('coffer key remove') or retired ('coffer key rotate --retire')")
        let catalog = try openCatalog(cacheDirectory: cacheDirectory, config: config, file: "catalog-writer-\(key.writer.prefix(16)).sqlite")
        let repo = Repository(backend: backend, config: config, writeOnly: writer, catalog: catalog)
        repo.openedSlot = record.name
        try repo.syncCatalog()
        return repo
    }
}
