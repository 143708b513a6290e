import Foundation
import Crypto

/// A read-capable key file (`coffer key export-key --output FILE`): the master secret of one
/// key generation in a 0600 file, for unattended commands (a restore host, a mount started at
/// boot) that should neither type a passphrase nor keep one in a file, and that skip the
/// KDF cost of a passphrase. It is as powerful as the recovery sheet: whoever holds it reads
/// everything. The repository keeps a public record (`key-file` in `keys/`) so that `key list`
/// shows it and `key remove` withdraws it from honest clients; after `key rotate` it is outdated.
public struct MasterKeyFile: Codable, Sendable {
    public static let kind = "coffer-key"
    public var version: Int = 1
    public var kind: String = MasterKeyFile.kind
    public var repository: String
    /// Random id naming this key file (32 hex digits); its record in `keys/` carries it.
    public var keyID: String
    public var generation: UInt32
    public var created: String
    public var hostname: String
    public var username: String
    public var label: String?
    public var master: String              // base64, 64 bytes
    /// First 16 bytes of SHA-256 over the other fields (as for write-only key files).
    public var check: String

    enum CodingKeys: String, CodingKey {
        case version, kind, repository, generation, created, hostname, username, label, master, check
        case keyID = "key_id"
    }

    func computedCheck() -> String {
        KeyFileCheck.compute([String(version), kind, repository, keyID, String(generation), created, hostname, username,
                              label ?? "", master])
    }

    public static func make(keys: RepositoryKeys, label: String?) -> MasterKeyFile {
        var k = MasterKeyFile(repository: Hex.encode(keys.repositoryID), keyID: Hex.encode(SecureRandom.bytes(count: 16)),
                              generation: keys.generation, created: Timestamp.now().rfc3339, hostname: SystemInfo.hostname,
                              username: SystemInfo.username, label: label,
                              master: keys.master.withUnsafeBytes { Data($0).base64EncodedString() }, check: "")
        k.check = k.computedCheck()
        return k
    }

    /// The master secret; throws `.corrupt` when the file is damaged.
    public func masterSecret(what: String) throws -> SecretBytes {
        guard kind == MasterKeyFile.kind, version == 1, check == computedCheck() else {
            throw StoreError(.corrupt, "\(what): check value does not match (the file is damaged or was edited)")
        }
        guard let d = Data(base64Encoded: master), d.count == RepositoryKeys.masterLength else {
            throw StoreError(.corrupt, "\(what): field master is damaged")
        }
        var bytes = Array(d)
        defer { secureZero(&bytes) }
        return SecretBytes(bytes)
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try enc.encode(self)) + [0x0a]
    }
}

enum KeyFileCheck {
    /// First 16 bytes of SHA-256 over the fields, each as u32 big-endian length ‖ UTF-8, hex.
    static func compute(_ fields: [String]) -> String {
        var bytes: [UInt8] = []
        for f in fields {
            let u = Array(f.utf8)
            bytes += [UInt8(u.count >> 24 & 0xff), UInt8(u.count >> 16 & 0xff), UInt8(u.count >> 8 & 0xff), UInt8(u.count & 0xff)] + u
        }
        defer { secureZero(&bytes) }
        return Hex.encode(Array(SHA256Digest.of(bytes).prefix(16)))
    }
}

/// A key file given with `--key-file` / `COFFER_KEY_FILE`.
public enum AnyKeyFile: Sendable {
    case writeOnly(WriteOnlyKey)
    case master(MasterKeyFile)

    /// Reads a key file, refusing one that group or others may read or write, or that is not a
    /// regular file.
    public static func load(_ path: RawPath) throws -> AnyKeyFile {
        var bytes: [UInt8]
        do {
            let fh = try FileHandle.openForReading(path)
            defer { fh.close() }
            let st = try fh.status()
            guard st.permissions & 0o077 == 0 else {
                throw StoreError(.invalidArgument, "key file \(path) is readable or writable by group or others (mode \(String(st.permissions & 0o777, radix: 8))): run 'chmod 600 \(path)'")
            }
            guard st.size <= 1 << 20 else { throw StoreError(.invalidArgument, "key file \(path) is not a coffer key file (too large)") }
            bytes = try fh.readExactly(count: Int(st.size), at: 0)
        } catch let e as PosixError {
            throw StoreError(.invalidArgument, "cannot read key file: \(e)")
        }
        defer { secureZero(&bytes) }
        struct Kind: Decodable { let kind: String }
        let kind = try? JSONDecoder().decode(Kind.self, from: Data(bytes)).kind
        switch kind {
        case WriteOnlyKey.kind?:
            if let k = try? JSONDecoder().decode(WriteOnlyKey.self, from: Data(bytes)) { return .writeOnly(k) }
        case MasterKeyFile.kind?:
            if let k = try? JSONDecoder().decode(MasterKeyFile.self, from: Data(bytes)) { return .master(k) }
        default: break
        }
        throw StoreError(.invalidArgument, "key file \(path) is not a coffer key file")
    }

    /// Writes a key file: a new file, mode 0600, never overwriting one.
    static func write(_ bytes: [UInt8], to path: RawPath) throws {
        do {
            let fh = try FileHandle.create(path, permissions: 0o600)
            defer { fh.close() }
            var b = bytes
            defer { secureZero(&b) }
            try b.withUnsafeBytes { try fh.write($0) }
            try fh.sync()
        } catch let e as PosixError {
            throw StoreError(.io, "cannot write the key file: \(e)")
        }
    }
}

extension MasterKeyFile {
    public func write(to path: RawPath) throws { try AnyKeyFile.write(try encoded(), to: path) }
}

extension Repository {
    /// The record in `keys/` of a key file (`kind` "key-file" or "write-only", `id` its key or
    /// writer id), after checking the file belongs to this repository. Also returns all slots.
    static func registeredRecord(backend: Backend, config: RepositoryConfig, keyRepository: String, kind: String,
                                 id: String, keyPath: String, why: String) throws -> (KeySlotEntry, [KeySlotEntry]) {
        guard keyRepository == config.id else {
            throw StoreError(.wrongPassword, "key file \(keyPath) belongs to repository \(keyRepository.prefix(8)), not to \(config.shortID) at \(backend.location)")
        }
        let slots = try keySlots(backend)
        guard let record = slots.first(where: { $0.slot?.kind == kind && $0.slot?.writer == id && $0.slot?.repository == config.id }) else {
            throw StoreError(.wrongPassword, "\(kind == "write-only" ? "write-only key" : "key file") \(id.prefix(8)) (\(keyPath)) is not registered in the repository at \(backend.location): it was \(why)")
        }
        return (record, slots)
    }

    /// Exports the newest generation's master secret as a key file and records it in `keys/`.
    public func exportKeyFile(label: String?) throws -> (key: MasterKeyFile, slot: String) {
        let key = MasterKeyFile.make(keys: try keys, label: label)
        var record = KeyFile(kind: "key-file", repository: key.repository, created: key.created, hostname: key.hostname,
                             username: key.username, label: label, kdf: nil, wrap: nil, wrappedKey: nil, recipients: nil)
        record.writer = key.keyID
        record.generation = key.generation == 0 ? nil : key.generation
        return (key, try Repository.addKeySlot(record, to: backend))
    }

    /// Opens a repository with a read-capable key file: no KDF, no prompt.
    public static func open(backend: Backend, keyFile key: MasterKeyFile, keyPath: String, cacheDirectory: RawPath,
                            cacheBytes: Int = 32 << 20, catalog: Catalog? = nil) throws -> Repository {
        let config = try readConfig(backend)
        let master = try key.masterSecret(what: "key file \(keyPath)")
        let (record, slots) = try registeredRecord(backend: backend, config: config, keyRepository: key.repository,
                                                   kind: "key-file", id: key.keyID, keyPath: keyPath,
                                                   why: "withdrawn ('coffer key remove') or outdated by 'coffer key rotate'; export a new one")
        let unlocked = try UnlockedKeys.walk(master: master, generation: key.generation, repositoryID: config.idBytes,
                                             slots: slots, location: backend.location)
        return try finishOpening(backend: backend, config: config, unlocked: unlocked, opened: record.name,
                                 cacheDirectory: cacheDirectory, cacheBytes: cacheBytes, catalog: catalog)
    }
}
